/**
 * The install directory of a node (`/opt/archipelago` by default) and the OTA's records in it:
 *
 *   releases/<version>/      extracted release trees (bin/, lib/, web/, apps/, VERSION)
 *   current -> releases/<v>  what systemd runs (`current/bin/archy daemon`), what nginx serves
 *                            (`current/web`), the catalog the daemon plans (`current/apps`)
 *   update-state.json        the previous release (kept for rollback) and the last update's result
 *   update-pending.json      the pending-verification marker (see Decide.PendingMarker)
 *
 * Every change is atomic: `current` is switched by renaming a new symlink over it, the JSON
 * records are written with writeAtomic (temporary file, fsync, rename, fsync of the directory).
 */
import { writeAtomic } from "@archy/engine/AtomicFile"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Path from "effect/Path"
import type * as PlatformError from "effect/PlatformError"
import * as Schema from "effect/Schema"
import { isVersion, type PendingMarker, type ProbeFailure } from "./Decide.ts"

export const defaultInstallDir = "/opt/archipelago"

/** A file of the install that cannot be read, written or understood: which one and why. */
export class InstallError extends Data.TaggedError("InstallError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

const ProbeFailureJson = Schema.Struct({
  probe: Schema.Literals(["web-ui", "daemon", "catalog", "boot"]),
  target: Schema.optionalKey(Schema.String),
  status: Schema.optionalKey(Schema.Number),
  error: Schema.String
})

const MarkerJson = Schema.Struct({
  from: Schema.String,
  to: Schema.String,
  at: Schema.String,
  boots: Schema.Number,
  rollback: Schema.optionalKey(ProbeFailureJson)
})

/** How the last update ended. */
export interface UpdateResult {
  /**
   * committed: the new release proved itself; rolled-back: it did not (see `failure`), or the
   * user asked; interrupted: the apply was killed before `current` moved; gave-up: the verifier
   * stopped trying (see `reason`) and left `current` where it was.
   */
  readonly outcome: "committed" | "rolled-back" | "interrupted" | "gave-up"
  readonly from: string
  readonly to: string
  readonly at: string
  readonly reason?: string
  readonly failure?: ProbeFailure
}

const ResultJson = Schema.Struct({
  outcome: Schema.Literals(["committed", "rolled-back", "interrupted", "gave-up"]),
  from: Schema.String,
  to: Schema.String,
  at: Schema.String,
  reason: Schema.optionalKey(Schema.String),
  failure: Schema.optionalKey(ProbeFailureJson)
})

export interface UpdateState {
  /** The release kept to roll back to. */
  readonly previous?: string
  readonly last?: UpdateResult
}

const StateJson = Schema.Struct({
  previous: Schema.optionalKey(Schema.String),
  last: Schema.optionalKey(ResultJson)
})

const reasonOf = (e: PlatformError.PlatformError): string => {
  const cause = (e as { readonly cause?: unknown }).cause
  return cause instanceof Error ? cause.message : e.message
}

export const make = (installDir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const platform = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
    const paths = {
      root: installDir,
      releases: path.join(installDir, "releases"),
      current: path.join(installDir, "current"),
      state: path.join(installDir, "update-state.json"),
      marker: path.join(installDir, "update-pending.json")
    }
    const fail =
      (p: string) =>
      <A, R>(effect: Effect.Effect<A, PlatformError.PlatformError, R>) =>
        Effect.mapError(effect, (e) => new InstallError({ path: p, reason: reasonOf(e) }))

    const releaseDir = (version: string) => path.join(paths.releases, version)

    /** The version `current` points at, or undefined when there is no `current` yet. */
    const current = Effect.gen(function* () {
      const exists = yield* fs.exists(paths.current).pipe(fail(paths.current))
      const isLink = yield* fs.readLink(paths.current).pipe(Effect.option)
      if (isLink._tag === "None") {
        if (!exists) return undefined
        return yield* new InstallError({ path: paths.current, reason: "is not a symlink" })
      }
      const version = path.basename(isLink.value)
      if (!isVersion(version) || path.resolve(installDir, isLink.value) !== releaseDir(version))
        return yield* new InstallError({
          path: paths.current,
          reason: `points at ${isLink.value}, not releases/<version>`
        })
      return version
    })

    /** The release versions extracted under releases/ (temporary directories are not versions). */
    const releases = Effect.gen(function* () {
      if (!(yield* fs.exists(paths.releases).pipe(fail(paths.releases)))) return [] as ReadonlyArray<string>
      const names = yield* fs.readDirectory(paths.releases).pipe(fail(paths.releases))
      return names.filter((n) => isVersion(n) && !n.startsWith(".")).sort()
    })

    const hasRelease = (version: string) => fs.exists(releaseDir(version)).pipe(fail(releaseDir(version)))

    /** Points `current` at releases/<version>: a new symlink beside it, renamed over it, then fsync. */
    const switchTo = Effect.fn("Install.switch")(function* (version: string) {
      const tmp = path.join(installDir, `.current.archy-tmp-${process.pid}`)
      yield* fs.remove(tmp, { force: true }).pipe(fail(tmp))
      yield* fs.symlink(`releases/${version}`, tmp).pipe(fail(tmp))
      yield* fs.rename(tmp, paths.current).pipe(
        fail(paths.current),
        Effect.tapError(() => fs.remove(tmp, { force: true }).pipe(Effect.ignore))
      )
      yield* Effect.scoped(Effect.flatMap(fs.open(installDir, { flag: "r" }), (d) => d.sync)).pipe(
        fail(installDir)
      )
    })

    const readJson = <S extends Schema.Decoder<unknown>>(file: string, schema: S) =>
      Effect.gen(function* () {
        if (!(yield* fs.exists(file).pipe(fail(file)))) return undefined
        const text = yield* fs.readFileString(file).pipe(fail(file))
        const decoded = Schema.decodeUnknownResult(Schema.fromJsonString(schema))(text)
        if (decoded._tag === "Failure")
          return yield* new InstallError({
            path: file,
            reason: `is not valid (${decoded.failure.message.split("\n")[0]}); fix or remove it`
          })
        return decoded.success as S["Type"]
      })

    const writeJson = (file: string, value: unknown) =>
      writeAtomic(file, new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`), {
        mode: 0o644
      }).pipe(
        Effect.provideContext(platform),
        Effect.mapError((e) => new InstallError({ path: file, reason: e.message }))
      )

    const removeFile = (file: string) =>
      fs
        .remove(file, { force: true })
        .pipe(
          Effect.andThen(Effect.scoped(Effect.flatMap(fs.open(installDir, { flag: "r" }), (d) => d.sync))),
          fail(file)
        )

    return {
      paths,
      releaseDir,
      current,
      releases,
      hasRelease,
      switchTo,
      marker: readJson(paths.marker, MarkerJson) as Effect.Effect<PendingMarker | undefined, InstallError>,
      writeMarker: (m: PendingMarker) => writeJson(paths.marker, m),
      removeMarker: removeFile(paths.marker),
      state: Effect.map(readJson(paths.state, StateJson), (s): UpdateState => s ?? {}),
      writeState: (s: UpdateState) => writeJson(paths.state, s),
      /** Deletes releases/<version> (a pruned or half-extracted tree). */
      removeRelease: (version: string) =>
        fs.remove(releaseDir(version), { recursive: true, force: true }).pipe(fail(releaseDir(version)))
    }
  })

export type Install = Effect.Success<ReturnType<typeof make>>
