/**
 * The engine's `HostDirectories` over any Effect `FileSystem`: for the simulation, whose disk is
 * in memory and whose faults fire inside the file system calls. No symlink checks: the in-memory
 * disk has no links.
 */
import type { DesiredDirectory } from "@archy/core/Desired"
import type { ObservedDirectory } from "@archy/core/Observed"
import { DirectoryError, type HostDirectories } from "@archy/engine/Directories"
import * as Effect from "effect/Effect"
import type * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"

type Shape = (typeof HostDirectories)["Service"]

export const make = (fs: FileSystem.FileSystem): Shape => {
  const observe = (dirs: ReadonlyArray<DesiredDirectory>) =>
    Effect.gen(function* () {
      const out: Array<ObservedDirectory> = []
      for (const d of dirs) {
        const info = yield* Effect.option(fs.stat(d.path))
        if (Option.isNone(info)) continue
        out.push({
          path: d.path,
          kind:
            info.value.type === "Directory"
              ? "directory"
              : info.value.type === "SymbolicLink"
                ? "symlink"
                : "other",
          mode: info.value.mode,
          uid: Option.getOrElse(info.value.uid, () => 0),
          gid: Option.getOrElse(info.value.gid, () => 0)
        })
      }
      return out as ReadonlyArray<ObservedDirectory>
    })
  const ensure = (dir: DesiredDirectory, exists: boolean) =>
    Effect.gen(function* () {
      const fail = (step: DirectoryError["step"]) => (e: { readonly message: string }) =>
        new DirectoryError({ path: dir.path, step, reason: e.message })
      if (!exists) {
        yield* fs
          .makeDirectory(dir.path, { mode: dir.mode })
          .pipe(
            Effect.catch((e) => (e.message.includes("EEXIST") ? Effect.void : Effect.fail(fail("create")(e))))
          )
      }
      const info = yield* fs.stat(dir.path).pipe(Effect.mapError(fail("open")))
      const uid = Option.getOrElse(info.uid, () => 0)
      const gid = Option.getOrElse(info.gid, () => 0)
      if (uid !== dir.uid || gid !== dir.gid)
        yield* fs.chown(dir.path, dir.uid, dir.gid).pipe(Effect.mapError(fail("chown")))
      if ((info.mode & 0o7777) !== dir.mode || uid !== dir.uid || gid !== dir.gid)
        yield* fs.chmod(dir.path, dir.mode).pipe(Effect.mapError(fail("chmod")))
    })
  return { observe, ensure }
}
