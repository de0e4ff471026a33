/**
 * Crash-safe file replacement: write a temporary file in the same directory, fsync it, set its
 * mode (and owner), rename it over the target, fsync the directory. A crash or a full disk at
 * any step leaves either the old file or the new one, never a torn mix; the temporary file is
 * removed when a step fails.
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Path from "effect/Path"

export interface WriteOptions {
  readonly mode: number
  /** `uid:gid`; left as the writer's when absent. */
  readonly owner?: string
}

export const writeAtomic = Effect.fn("AtomicFile.write")(function* (
  path: string,
  bytes: Uint8Array,
  options: WriteOptions
) {
  const fs = yield* FileSystem.FileSystem
  const paths = yield* Path.Path
  const dir = paths.dirname(path)
  yield* fs.makeDirectory(dir, { recursive: true })
  const tmp = paths.join(dir, `.${paths.basename(path)}.archy-tmp-${process.pid}`)
  const write = Effect.scoped(
    Effect.gen(function* () {
      const file = yield* fs.open(tmp, { flag: "w", mode: options.mode })
      yield* file.writeAll(bytes)
      yield* file.sync
    })
  ).pipe(
    Effect.andThen(fs.chmod(tmp, options.mode)),
    Effect.andThen(
      options.owner === undefined
        ? Effect.void
        : fs.chown(tmp, Number(options.owner.split(":")[0]), Number(options.owner.split(":")[1]))
    ),
    Effect.andThen(fs.rename(tmp, path)),
    Effect.tapError(() => fs.remove(tmp, { force: true }).pipe(Effect.ignore))
  )
  yield* write
  // The rename is durable only once the directory entry is on disk.
  yield* Effect.scoped(Effect.flatMap(fs.open(dir, { flag: "r" }), (d) => d.sync))
})
