/**
 * The node's directories on disk: observing them (one `lstat` each per pass) and carrying out
 * `EnsureDirectory` (create, then set mode and owner of the directory itself, never its
 * contents).
 *
 * Below a directory's trusted root every path component is checked not to be a symbolic link:
 * a data dir belongs to a container's uid, so the container could replace `data/x` with a link
 * to /etc and have the node chown that. The directory is opened with O_NOFOLLOW, the path the
 * kernel resolved it to (`/proc/self/fd/N`) is compared with the expected one, and mode and
 * owner are set through that descriptor, so a link swapped in between cannot redirect them.
 * This is why it uses node:fs rather than Effect's FileSystem, which has no descriptor-based
 * chown or O_NOFOLLOW.
 */
import { constants, lstatSync, statSync } from "node:fs"
import * as fsp from "node:fs/promises"
import type { DesiredDirectory } from "@archy/core/Desired"
import type { ObservedDirectory } from "@archy/core/Observed"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"

/** A directory that could not be set up: which, at which step, and the system's reason. */
export class DirectoryError extends Data.TaggedError("DirectoryError")<{
  readonly path: string
  readonly step: "resolve its root" | "create" | "open" | "check for links" | "chmod" | "chown"
  readonly reason: string
}> {
  override get message(): string {
    return `setting up directory ${this.path} failed at ${this.step}: ${this.reason}`
  }
}

const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const kindOf = (s: { isDirectory(): boolean; isSymbolicLink(): boolean }): ObservedDirectory["kind"] =>
  s.isDirectory() ? "directory" : s.isSymbolicLink() ? "symlink" : "other"

/**
 * What is at each desired directory's path; missing ones are left out. A directory that is its
 * own root may be a link (a state dir on another disk), so it is followed; any other is not.
 */
export const observeDirectories = (
  dirs: ReadonlyArray<DesiredDirectory>
): Effect.Effect<ReadonlyArray<ObservedDirectory>> =>
  // Synchronous on purpose: ~2 µs each, where an async lstat waits for libuv's thread pool (about
  // 1 ms a call on a busy node), and a steady pass should cost little more than its podman call.
  Effect.sync(() => {
    const out: Array<ObservedDirectory> = []
    for (const d of dirs) {
      try {
        const s = d.path === d.root ? statSync(d.path) : lstatSync(d.path)
        out.push({ path: d.path, kind: kindOf(s), mode: s.mode, uid: s.uid, gid: s.gid })
      } catch {
        // Missing (or unreadable): planned as missing, and creating it will say why it fails.
      }
    }
    return out
  })

const dirname = (p: string): string => p.slice(0, Math.max(p.lastIndexOf("/"), 1))
const basename = (p: string): string => p.slice(p.lastIndexOf("/") + 1)

const openNoFollow = (path: string) =>
  fsp.open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW)

/**
 * Creates the directory when `exists` is false (its parent comes earlier in the plan), then
 * sets its mode and owner when they differ. Idempotent: a directory that matches is not touched.
 */
export const ensureDirectory = Effect.fn("Directories.ensure")(function* (
  dir: DesiredDirectory,
  exists: boolean
) {
  const fail = (step: DirectoryError["step"]) => (e: unknown) =>
    new DirectoryError({ path: dir.path, step, reason: reasonOf(e) })
  if (dir.path === dir.root) {
    // The node's own directory: links to it are the operator's choice and are followed.
    if (!exists) {
      yield* Effect.tryPromise({
        try: () => fsp.mkdir(dir.path, { recursive: true, mode: dir.mode }),
        catch: fail("create")
      })
    }
    const handle = yield* Effect.tryPromise({
      try: () => fsp.open(dir.path, constants.O_RDONLY | constants.O_DIRECTORY),
      catch: fail("open")
    })
    return yield* settle(dir, handle, fail)
  }
  const rootReal = yield* Effect.tryPromise({
    try: () => fsp.realpath(dir.root),
    catch: fail("resolve its root")
  })
  const expected = `${rootReal}${dir.path.slice(dir.root.length)}`
  /** The kernel's own idea of where an open directory is: no link can hide in it. */
  const verify = (handle: fsp.FileHandle, want: string) =>
    Effect.tryPromise({
      try: () => fsp.readlink(`/proc/self/fd/${handle.fd}`),
      catch: fail("check for links")
    }).pipe(
      Effect.flatMap((actual) =>
        actual === want
          ? Effect.void
          : Effect.fail(
              fail("check for links")(
                `it resolves to ${actual}, not ${want}: a symbolic link on the way; refusing to follow it`
              )
            )
      )
    )
  const openChecked = (path: string, want: string) =>
    Effect.acquireRelease(
      Effect.tryPromise({
        try: () => openNoFollow(path),
        catch: (e) =>
          fail("open")(
            // O_DIRECTORY|O_NOFOLLOW on a link fails with ELOOP or, on Linux, ENOTDIR.
            ["ELOOP", "ENOTDIR"].includes((e as { code?: string }).code ?? "")
              ? "it is a symbolic link or not a directory; refusing to follow it"
              : e
          )
      }),
      (h) => Effect.promise(() => h.close())
    ).pipe(Effect.tap((h) => verify(h, want)))
  return yield* Effect.scoped(
    Effect.gen(function* () {
      if (!exists) {
        const parent = yield* openChecked(dirname(dir.path), dirname(expected))
        // Through the verified parent's descriptor: mkdirat() in all but name.
        yield* Effect.tryPromise({
          try: () => fsp.mkdir(`/proc/self/fd/${parent.fd}/${basename(dir.path)}`, { mode: dir.mode }),
          catch: (e) => e
        }).pipe(
          Effect.catch((e) =>
            (e as { code?: string }).code === "EEXIST" ? Effect.void : Effect.fail(fail("create")(e))
          )
        )
      }
      const handle = yield* openChecked(dir.path, expected)
      return yield* settleOpen(dir, handle, fail)
    })
  )
})

type Fail = (step: DirectoryError["step"]) => (e: unknown) => DirectoryError

/** Sets mode and owner through the descriptor, then closes it. */
const settle = (dir: DesiredDirectory, handle: fsp.FileHandle, fail: Fail) =>
  settleOpen(dir, handle, fail).pipe(Effect.ensuring(Effect.promise(() => handle.close())))

const settleOpen = (dir: DesiredDirectory, handle: fsp.FileHandle, fail: Fail) =>
  Effect.gen(function* () {
    const s = yield* Effect.tryPromise({ try: () => handle.stat(), catch: fail("open") })
    // Owner first: chown clears setuid/setgid bits, which the mode then restores.
    if (s.uid !== dir.uid || s.gid !== dir.gid) {
      yield* Effect.tryPromise({ try: () => handle.chown(dir.uid, dir.gid), catch: fail("chown") })
    }
    if ((s.mode & 0o7777) !== dir.mode || s.uid !== dir.uid || s.gid !== dir.gid) {
      yield* Effect.tryPromise({ try: () => handle.chmod(dir.mode), catch: fail("chmod") })
    }
  })

/**
 * How the reconciler reaches the host's directories: this module's node:fs functions unless a
 * test provides another (the simulation's in-memory disk).
 */
export const HostDirectories = Context.Reference<{
  readonly observe: (dirs: ReadonlyArray<DesiredDirectory>) => Effect.Effect<ReadonlyArray<ObservedDirectory>>
  readonly ensure: (dir: DesiredDirectory, exists: boolean) => Effect.Effect<void, DirectoryError>
}>("archy/engine/HostDirectories", {
  defaultValue: () => ({ observe: observeDirectories, ensure: ensureDirectory })
})
