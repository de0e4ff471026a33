/**
 * `extractRelease`: unpacks a release tarball into a directory that does not exist yet, all or
 * nothing. The tarball is checked first (nothing is written when any check fails); entries are
 * then written into a temporary sibling directory, re-checked one by one as they stream (the file
 * could change between the two reads), and the directory is renamed into place only when every
 * entry is written and synced. Modes are set explicitly, never left to the umask.
 */
import * as fs from "node:fs/promises"
import { basename, dirname, join, resolve } from "node:path"
import * as Effect from "effect/Effect"
import { display } from "./internal/EntryPath.ts"
import { io, isMissing, reasonOf } from "./internal/Io.ts"
import { forEachEntry } from "./internal/TarReader.ts"
import { syncDirectory } from "./internal/WriteAtomic.ts"
import { AlreadyExists, fail, IoFailed, TarballRejected } from "./ReleaseError.ts"
import { assertTarball, type Layout, TarballChecker } from "./Tarball.ts"

export interface ExtractResult {
  readonly dir: string
  readonly entries: number
  /** The tarball's VERSION, for a release. */
  readonly version: string | undefined
}

const writeEntry = async (
  root: string,
  path: string,
  type: string,
  body: AsyncIterable<Buffer>,
  mode: number,
  linkname: string | undefined
) => {
  const target = path === "" ? root : join(root, path)
  if (type === "directory") {
    if (path !== "") await fs.mkdir(target)
    await fs.chmod(target, mode)
  } else if (type === "symlink") {
    await fs.symlink(linkname ?? "", target)
  } else {
    // O_EXCL: never follows or replaces anything already there.
    const handle = await fs.open(target, "wx", 0o600)
    try {
      for await (const chunk of body) await handle.write(chunk)
      await handle.sync()
      await handle.chmod(mode)
    } finally {
      await handle.close()
    }
  }
}

/**
 * Extracts `tarball` to `destDir` (which must not exist; its parent is created). `layout`
 * defaults to `release`.
 */
export const extractRelease = Effect.fn("Release.extractRelease")(function* (
  tarball: string,
  destDir: string,
  options?: { readonly layout?: Layout }
) {
  const layout = options?.layout ?? "release"
  const dest = resolve(destDir)
  const exists = yield* Effect.tryPromise({ try: () => fs.lstat(dest), catch: (e) => e }).pipe(
    Effect.map(() => true),
    Effect.catch((e) => (isMissing(e) ? Effect.succeed(false) : Effect.succeed(true)))
  )
  if (exists) return yield* Effect.fail(fail(new AlreadyExists({ path: dest, what: "a release directory" })))
  // Before anything is written.
  yield* assertTarball(tarball, { layout })
  yield* io("create the parent directory", dirname(dest), () => fs.mkdir(dirname(dest), { recursive: true }))
  const tmp = join(
    dirname(dest),
    `.${basename(dest)}.extract-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  )
  yield* io("create the temporary directory", tmp, () => fs.mkdir(tmp, { mode: 0o700 }))
  const checker = new TarballChecker()
  let entries = 0
  const directories: Array<string> = []
  const unpack = forEachEntry(tarball, async (header, body) => {
    entries++
    const before = checker.violations.length
    const path = checker.entry(header)
    if (path === undefined || checker.violations.length > before)
      throw fail(new TarballRejected({ file: tarball, violations: checker.violations.slice(before) }))
    if (checker.wantsBody(path, header)) {
      const chunks: Array<Buffer> = []
      for await (const chunk of body) chunks.push(chunk)
      const bytes = Buffer.concat(chunks)
      checker.version = bytes.toString("utf8").trim()
      body = (async function* () {
        yield bytes
      })()
    }
    if (header.type === "directory") directories.push(path === "" ? tmp : join(tmp, path))
    try {
      await writeEntry(tmp, path, header.type, body, header.mode, header.linkname)
    } catch (e) {
      throw fail(new IoFailed({ step: "extract", path: `${display(path)} into ${tmp}`, reason: reasonOf(e) }))
    }
  }).pipe(
    Effect.andThen(
      Effect.suspend(() => {
        const violations = checker.finish(layout)
        return violations.length === 0
          ? Effect.void
          : Effect.fail(fail(new TarballRejected({ file: tarball, violations })))
      })
    ),
    // Files were synced as written; their directory entries too, before the rename publishes them.
    Effect.andThen(
      Effect.suspend(() => Effect.forEach(directories.reverse(), syncDirectory, { discard: true }))
    ),
    Effect.andThen(io("rename", `${tmp} -> ${dest}`, () => fs.rename(tmp, dest))),
    Effect.tapError(() => Effect.promise(() => fs.rm(tmp, { recursive: true, force: true })))
  )
  yield* unpack
  yield* syncDirectory(dirname(dest))
  return { dir: dest, entries, version: checker.version } satisfies ExtractResult
})
