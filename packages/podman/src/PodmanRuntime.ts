/**
 * The port to podman: observe the node's containers, images and networks in one snapshot, and
 * apply one plan action. Everything podman-shaped stops here; the engine sees `RuntimeSnapshot`
 * and one typed `RuntimeError` whose `reason` says what went wrong and where.
 *
 * Two adapters implement it (`LibpodRuntime` over the REST API on a unix socket, `CliRuntime`
 * over the `podman` command) and pass the same contract tests.
 */
import type { Action } from "@archy/core/Action"
import type { ObservedContainer, ObservedImage, ObservedNetwork } from "@archy/core/Observed"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Stream from "effect/Stream"

/** What podman knows about the node, in the core's Observed shapes. */
export interface RuntimeSnapshot {
  readonly containers: ReadonlyArray<ObservedContainer>
  readonly images: ReadonlyArray<ObservedImage>
  readonly networks: ReadonlyArray<ObservedNetwork>
}

/** The plan actions podman carries out; secrets, files and adoption records are not its job. */
export type RuntimeAction = Extract<
  Action,
  {
    readonly _tag:
      | "EnsureNetwork"
      | "PullImage"
      | "BuildImage"
      | "Create"
      | "Start"
      | "Stop"
      | "Restart"
      | "Remove"
      | "Recreate"
  }
>

export const runtimeActionTags: ReadonlyArray<RuntimeAction["_tag"]> = [
  "EnsureNetwork",
  "PullImage",
  "BuildImage",
  "Create",
  "Start",
  "Stop",
  "Restart",
  "Remove",
  "Recreate"
]

export const isRuntimeAction = (a: Action): a is RuntimeAction =>
  (runtimeActionTags as ReadonlyArray<string>).includes(a._tag)

/** podman cannot be reached at all (socket missing, service down, binary missing). */
export class PodmanUnreachable extends Schema.TaggedError<PodmanUnreachable>()("PodmanUnreachable", {
  endpoint: Schema.String,
  detail: Schema.String
}) {}

export class NoSuchContainer extends Schema.TaggedError<NoSuchContainer>()("NoSuchContainer", {
  container: Schema.String
}) {}

/** podman answers HTTP 500 "that name is already in use", not 409: we classify it by text. */
export class NameInUse extends Schema.TaggedError<NameInUse>()("NameInUse", {
  container: Schema.String
}) {}

export class ImageMissing extends Schema.TaggedError<ImageMissing>()("ImageMissing", {
  image: Schema.String,
  detail: Schema.String
}) {}

export class RuntimeTimeout extends Schema.TaggedError<RuntimeTimeout>()("RuntimeTimeout", {
  operation: Schema.String,
  afterMs: Schema.Number
}) {}

/** podman answered, but not in a shape or with a status we understand. */
export class UnexpectedOutput extends Schema.TaggedError<UnexpectedOutput>()("UnexpectedOutput", {
  operation: Schema.String,
  detail: Schema.String
}) {}

export class RuntimeError extends Schema.TaggedError<RuntimeError>()("RuntimeError", {
  reason: Schema.Union([
    PodmanUnreachable,
    NoSuchContainer,
    NameInUse,
    ImageMissing,
    RuntimeTimeout,
    UnexpectedOutput
  ])
}) {
  override get message(): string {
    return describeReason(this.reason)
  }
}

const describeReason = (r: RuntimeError["reason"]): string => {
  switch (r._tag) {
    case "PodmanUnreachable":
      return `podman is unreachable at ${r.endpoint}: ${r.detail}`
    case "NoSuchContainer":
      return `no such container: ${r.container}`
    case "NameInUse":
      return `the container name ${r.container} is already in use`
    case "ImageMissing":
      return `image ${r.image} is missing: ${r.detail}`
    case "RuntimeTimeout":
      return `podman did not finish ${r.operation} within ${r.afterMs} ms`
    case "UnexpectedOutput":
      return `unexpected podman output for ${r.operation}: ${r.detail}`
  }
}

/** One podman event, reduced to what the daemon reacts to. */
export interface RuntimeEvent {
  /** `container`, `image`, `network`, … as podman names it. */
  readonly type: string
  /** `died`, `start`, `stop`, `remove`, `create`, … as podman names it. */
  readonly action: string
  readonly id?: string
  readonly name?: string
  readonly timeMs: number
}

/** The outcome of running a container's recorded health check once. */
export interface HealthcheckResult {
  readonly healthy: boolean
  /** What the check printed or why it failed, shortened: shown to the user as the reason. */
  readonly output: string
}

/** What `archy doctor` reads of one container: where a secret could leak, and its hosts. */
export interface ContainerDetails {
  readonly name: string
  /** `KEY=value` entries of the container's environment. */
  readonly env: ReadonlyArray<string>
  /** Entrypoint and command as podman will run them. */
  readonly args: ReadonlyArray<string>
  readonly labels: Readonly<Record<string, string>>
  /** `name:ip` entries added to /etc/hosts (`--add-host`). */
  readonly extraHosts: ReadonlyArray<string>
}

/** Progress lines of a pull or build, for the CLI to show. */
export type Progress = (line: string) => Effect.Effect<void>

export class PodmanRuntime extends Context.Service<
  PodmanRuntime,
  {
    /** A human name for where podman is reached (socket path or `podman` CLI). */
    readonly endpoint: string
    readonly observe: Effect.Effect<RuntimeSnapshot, RuntimeError>
    readonly apply: (action: RuntimeAction, progress?: Progress) => Effect.Effect<void, RuntimeError>
    /** How many calls this runtime made to podman so far (benchmarks and the one-call test). */
    readonly calls: Effect.Effect<number>
    /**
     * podman's event stream from now on. It ends (or fails) when podman's stream ends, e.g. when
     * the service restarts: the caller reconnects.
     */
    readonly events: Stream.Stream<RuntimeEvent, RuntimeError>
    /**
     * Runs the health check recorded on the container once (podman 4.x without systemd runs
     * none by itself). An unhealthy result is a value; only failing to run it is an error.
     */
    readonly healthcheck: (container: string) => Effect.Effect<HealthcheckResult, RuntimeError>
    /** One container's environment, arguments, labels and extra hosts (for `archy doctor`). */
    readonly inspect: (container: string) => Effect.Effect<ContainerDetails, RuntimeError>
  }
>()("archy/podman/PodmanRuntime") {}
