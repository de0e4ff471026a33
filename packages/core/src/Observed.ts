/**
 * Observed: one snapshot of what the node has right now (podman's containers, images and
 * networks, which canonical secrets exist, the rendered files on disk) plus the reconciler's
 * own memory (crash backoff). Collected once per pass; planning never calls out again.
 *
 * It is a Schema so a snapshot can be saved as JSON and fed to `archy plan --observed FILE`,
 * with a clear error when the file does not fit.
 */
import * as Schema from "effect/Schema"

export const ContainerState = Schema.Literals([
  "created",
  "running",
  "paused",
  "stopping",
  "exited",
  "stopped",
  "configured",
  "removing",
  "unknown"
])
export type ContainerState = typeof ContainerState.Type

const isContainerState = Schema.is(ContainerState)

/** podman's state text (any case; libpod also says `initialized`) as a ContainerState. */
export const toContainerState = (podmanState: string): ContainerState => {
  const s = podmanState.toLowerCase()
  if (s === "initialized") return "created"
  return isContainerState(s) ? s : "unknown"
}

export const ObservedContainer = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  /** The image reference the container was created from. */
  image: Schema.String,
  labels: Schema.Record(Schema.String, Schema.String),
  state: ContainerState,
  exitCode: Schema.optionalKey(Schema.Int),
  /** Epoch milliseconds of the last start; absent when it never started. */
  startedAtMs: Schema.optionalKey(Schema.Number),
  health: Schema.optionalKey(Schema.Literals(["healthy", "unhealthy", "starting"]))
})
export type ObservedContainer = typeof ObservedContainer.Type

export const ObservedImage = Schema.Struct({
  id: Schema.String,
  /** Every reference this image is known by (`docker.io/lightninglabs/lnd:v0.19.3-beta`). */
  names: Schema.Array(Schema.String),
  digest: Schema.optionalKey(Schema.String)
})
export type ObservedImage = typeof ObservedImage.Type

export const ObservedNetwork = Schema.Struct({
  name: Schema.String,
  subnet: Schema.optionalKey(Schema.String),
  gateway: Schema.optionalKey(Schema.String)
})
export type ObservedNetwork = typeof ObservedNetwork.Type

export const ObservedFile = Schema.Struct({
  /** Absolute host path. */
  path: Schema.String,
  /** sha256 of the bytes, lowercase hex. */
  sha256: Schema.String,
  mode: Schema.Int,
  /** Owner as uid:gid. */
  owner: Schema.optionalKey(Schema.String),
  mtimeMs: Schema.Number
})
export type ObservedFile = typeof ObservedFile.Type

/** What is at a desired directory's path (`lstat`: a symbolic link is reported as one, never followed). */
export const ObservedDirectory = Schema.Struct({
  /** Absolute host path. */
  path: Schema.String,
  kind: Schema.Literals(["directory", "symlink", "other"]),
  mode: Schema.Int,
  uid: Schema.Int,
  gid: Schema.Int
})
export type ObservedDirectory = typeof ObservedDirectory.Type

/** The reconciler remembers crashes; while `untilMs` is in the future it does not restart. */
export const Backoff = Schema.Struct({
  container: Schema.String,
  untilMs: Schema.Number,
  reason: Schema.String
})
export type Backoff = typeof Backoff.Type

/**
 * FM6: a container podman's storage holds (and its OCI runtime may still run) that podman's state
 * DB does not list, e.g. after `bolt_state.db` was lost. Its name blocks a new container.
 */
export const OrphanContainer = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  /** What still holds it: `storage`, `storage, running as pid 123 under conmon 120`. */
  detail: Schema.String
})
export type OrphanContainer = typeof OrphanContainer.Type

export const Observed = Schema.Struct({
  containers: Schema.Array(ObservedContainer),
  images: Schema.Array(ObservedImage),
  networks: Schema.Array(ObservedNetwork),
  /** Names of the canonical secrets that exist (never their values). */
  secrets: Schema.Array(Schema.String),
  files: Schema.Array(ObservedFile),
  /**
   * The desired directories that exist (a missing one is left out). The whole key is absent when
   * nobody looked (a hand-made or older snapshot): then directories are not planned at all.
   */
  directories: Schema.optionalKey(Schema.Array(ObservedDirectory)),
  backoff: Schema.optionalKey(Schema.Array(Backoff)),
  orphans: Schema.optionalKey(Schema.Array(OrphanContainer))
})
export type Observed = typeof Observed.Type

/** A node with nothing on it: what `archy plan` assumes without `--observed`. */
export const empty: Observed = {
  containers: [],
  images: [],
  networks: [],
  secrets: [],
  files: [],
  directories: []
}

/** Our labels. A container without `app` is not ours and is never touched. */
export const labels = {
  app: "io.archipelago.app",
  container: "io.archipelago.container",
  specHash: "io.archipelago.spec-hash",
  /** The stop timeout it was created with, so removing it later (app gone) grants it as well. */
  stopTimeout: "io.archipelago.stop-timeout",
  filesHash: "io.archipelago.files-hash"
} as const

export const decodeObservedJson = Schema.decodeUnknownResult(Schema.fromJsonString(Observed))
