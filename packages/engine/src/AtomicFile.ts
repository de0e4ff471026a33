/**
 * Crash-safe file replacement: write a temporary file in the same directory, fsync it, set its
 * mode (and owner), rename it over the target, fsync the directory. A crash or a full disk at
 * any step leaves either the old file or the new one, never a torn mix; the temporary file is
 * removed when a step fails.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Path from "effect/Path"
import type * as PlatformError from "effect/PlatformError"

export interface WriteOptions {
  readonly mode: number
  /** `uid:gid`; left as the writer's when absent. */
  readonly owner?: string
}

/** A failed write: which step, on which file, and the system's own reason (ENOSPC, EPERM, …). */
export class AtomicWriteError extends Data.TaggedError("AtomicWriteError")<{
  readonly path: string
  readonly step:
    | "create the directory"
    | "write"
    | "fsync"
    | "chmod"
    | "chown"
    | "rename"
    | "fsync the directory"
  readonly reason: string
}> {
  override get message(): string {
    return `writing ${this.path} failed at ${this.step}: ${this.reason}`
  }
}

/** Node's own words (`ENOSPC: no space left on device, write`), not just the platform tag. */
const reasonOf = (e: PlatformError.PlatformError): string => {
  const cause = (e as { readonly cause?: unknown }).cause
  return cause instanceof Error ? cause.message : e.message
}

export const writeAtomic = Effect.fn("AtomicFile.write")(function* (
  path: string,
  bytes: Uint8Array,
  options: WriteOptions
) {
  const fs = yield* FileSystem.FileSystem
  const paths = yield* Path.Path
  const dir = paths.dirname(path)
  const step =
    (name: AtomicWriteError["step"]) =>
    <A, R>(effect: Effect.Effect<A, PlatformError.PlatformError, R>) =>
      Effect.mapError(effect, (e) => new AtomicWriteError({ path, step: name, reason: reasonOf(e) }))
  yield* fs.makeDirectory(dir, { recursive: true }).pipe(step("create the directory"))
  const tmp = paths.join(dir, `.${paths.basename(path)}.archy-tmp-${process.pid}`)
  const write = Effect.scoped(
    Effect.gen(function* () {
      const file = yield* fs.open(tmp, { flag: "w", mode: options.mode }).pipe(step("write"))
      yield* file.writeAll(bytes).pipe(step("write"))
      yield* file.sync.pipe(step("fsync"))
    })
  ).pipe(
    Effect.andThen(fs.chmod(tmp, options.mode).pipe(step("chmod"))),
    Effect.andThen(
      options.owner === undefined
        ? Effect.void
        : fs
            .chown(tmp, Number(options.owner.split(":")[0]), Number(options.owner.split(":")[1]))
            .pipe(step("chown"))
    ),
    Effect.andThen(fs.rename(tmp, path).pipe(step("rename"))),
    Effect.tapError(() => fs.remove(tmp, { force: true }).pipe(Effect.ignore))
  )
  yield* write
  // The rename is durable only once the directory entry is on disk.
  yield* Effect.scoped(Effect.flatMap(fs.open(dir, { flag: "r" }), (d) => d.sync)).pipe(
    step("fsync the directory")
  )
})
