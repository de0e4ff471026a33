/**
 * Complete files only: write a temporary name in the same directory, fsync, chmod, rename over
 * the target, fsync the directory. The temporary file is removed when any step fails.
 */
import * as fs from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import * as Effect from "effect/Effect"
import { io } from "./Io.ts"

/** A hidden temporary name next to `path`, unique to this process. */
export const tempNameFor = (path: string): string =>
  join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`)

export const syncDirectory = (dir: string) =>
  io("fsync the directory", dir, async () => {
    const handle = await fs.open(dir, "r")
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  })

/** Moves a complete temporary file into place (rename, then fsync of its directory). */
export const commitFile = (tmp: string, path: string) =>
  io("rename", `${tmp} -> ${path}`, () => fs.rename(tmp, path)).pipe(
    Effect.andThen(syncDirectory(dirname(path))),
    Effect.tapError(() => Effect.promise(() => fs.rm(tmp, { force: true })))
  )

export const writeFileAtomic = (path: string, bytes: Uint8Array, mode: number) => {
  const tmp = tempNameFor(path)
  return io("write", tmp, async () => {
    const handle = await fs.open(tmp, "wx", mode)
    try {
      await handle.writeFile(bytes)
      await handle.sync()
      await handle.chmod(mode)
    } finally {
      await handle.close()
    }
  }).pipe(
    Effect.tapError(() => Effect.promise(() => fs.rm(tmp, { force: true }))),
    Effect.andThen(commitFile(tmp, path))
  )
}
