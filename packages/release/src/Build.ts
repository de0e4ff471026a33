/**
 * `buildRelease`: from a staged tree to a signed release in OUTDIR. The tree is checked, copied
 * to a private staging directory with normalized modes (directories 0755, files 0644, files with
 * any x bit 0755; `--from` itself is never modified), packed, and the finished tarball is checked
 * again with `checkTarball`'s rules. Nothing reaches OUTDIR unless every check passes, and what
 * does is written under temporary names and renamed into place, so OUTDIR only ever holds
 * complete files.
 */
import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, relative, resolve } from "node:path"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { display, linkEscape } from "./internal/EntryPath.ts"
import { io, isMissing } from "./internal/Io.ts"
import { writeTarball } from "./internal/TarWriter.ts"
import { type TreeEntry, walkTree } from "./internal/TreeWalk.ts"
import { commitFile, tempNameFor, writeFileAtomic } from "./internal/WriteAtomic.ts"
import { loadPrivateKey } from "./Keys.ts"
import {
  AlreadyExists,
  fail,
  InvalidVersion,
  TarballMismatch,
  TreeRejected,
  type Violation
} from "./ReleaseError.ts"
import { encodeManifest, type ReleaseManifest, signBytes } from "./ReleaseManifest.ts"
import { assertTarball, describeMode, type Layout } from "./Tarball.ts"
import { validateVersion } from "./Version.ts"

/** The file names of version `version` in a release directory (a mirror). */
export const releaseFiles = (version: string) => ({
  tarball: `archy-${version}.tar.gz`,
  manifest: `archy-${version}.release.json`,
  signature: `archy-${version}.release.json.sig`
})
export const latestManifest = "latest.release.json"
export const latestSignature = "latest.release.json.sig"

/**
 * The fixed mtime of every entry: SOURCE_DATE_EPOCH when set (the reproducible-builds
 * convention), else 2000-01-01T00:00:00Z (tar tools warn about 1970 timestamps).
 */
export const defaultMtime = (): Date => {
  const epoch = process.env.SOURCE_DATE_EPOCH
  return epoch !== undefined && /^\d+$/.test(epoch)
    ? new Date(Number(epoch) * 1000)
    : new Date(946_684_800_000)
}

/** The mode an entry gets in the release. */
export const normalizedMode = (e: Pick<TreeEntry, "kind" | "mode">): number =>
  e.kind === "directory" ? 0o755 : e.kind === "file" ? (e.mode & 0o111 ? 0o755 : 0o644) : 0o777

/**
 * What in the source tree cannot be released, before anything is copied. The root must grant
 * read and search to everyone: a 0700 root is field failure FM5's exact fingerprint and means the
 * step that staged the tree is broken, so it is refused rather than patched over. Modes inside
 * the tree are normalized instead.
 */
export const treeViolations = (entries: ReadonlyArray<TreeEntry>, layout: Layout): Array<Violation> => {
  const violations: Array<Violation> = []
  const add = (path: string, check: string, message: string) => violations.push({ path, check, message })
  const byPath = new Map(entries.map((e) => [e.path, e]))
  const links = new Map(
    entries.flatMap((e) => (e.kind === "symlink" ? [[e.path, e.target ?? ""] as const] : []))
  )
  const root = byPath.get("")
  if (root === undefined || root.kind !== "directory") add("./", "root", "the tree is not a directory")
  else if ((root.mode & 0o055) !== 0o055)
    add(
      "./",
      "root-mode",
      `the tree's root is ${describeMode("directory", root.mode)}; it must be readable and searchable by ` +
        "everyone (chmod 755): a release whose root is not broke nginx on every node that updated (FM5)"
    )
  for (const e of entries) {
    if (
      e.kind === "fifo" ||
      e.kind === "socket" ||
      e.kind === "block-device" ||
      e.kind === "character-device"
    )
      add(display(e.path), "entry-type", `${e.kind}; releases hold only files, directories and symlinks`)
    if (e.kind === "symlink") {
      const escapes = linkEscape(e.path, e.target ?? "", links)
      if (escapes !== undefined) add(display(e.path), "link-escape", `symlink ${escapes}`)
    }
  }
  if (layout === "release") {
    const need = (path: string, kind: TreeEntry["kind"], what: string) => {
      const e = byPath.get(path)
      if (e === undefined) add(display(path), "layout", `missing: a release needs ${what}`)
      else if (e.kind !== kind) add(display(path), "layout", `is a ${e.kind}, expected a ${kind} (${what})`)
      return e?.kind === kind ? e : undefined
    }
    const launcher = need("bin/archy", "file", "the launcher bin/archy")
    if (launcher !== undefined && (launcher.mode & 0o111) === 0)
      add("./bin/archy", "layout", `the launcher is not executable (${describeMode("file", launcher.mode)})`)
    need("lib/archy.mjs", "file", "the bundle lib/archy.mjs")
    need("web/index.html", "file", "the web UI's web/index.html")
    need("apps", "directory", "the apps catalog apps/")
    const v = byPath.get("VERSION")
    if (v !== undefined && v.kind !== "file") add("./VERSION", "layout", `is a ${v.kind}, expected a file`)
  }
  return violations
}

/** Copies the checked tree into `dest` with normalized modes. VERSION is written when missing. */
const stage = (entries: ReadonlyArray<TreeEntry>, dest: string) =>
  io("stage the tree", dest, async () => {
    for (const e of entries) {
      const target = e.path === "" ? dest : join(dest, e.path)
      if (e.kind === "directory") await fs.mkdir(target, { mode: 0o755 })
      else if (e.kind === "file") await fs.copyFile(e.absolute, target, fs.constants.COPYFILE_EXCL)
      else if (e.kind === "symlink") await fs.symlink(e.target ?? "", target)
      if (e.kind !== "symlink") await fs.chmod(target, normalizedMode(e))
    }
  })

/** sha256 (hex) and size in bytes of a file, streamed. */
export const digestFile = (file: string) =>
  io("hash", file, async () => {
    const hash = createHash("sha256")
    let size = 0
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer)
      size += (chunk as Buffer).length
    }
    return { sha256: hash.digest("hex"), size }
  })

const refuseExisting = (path: string, what: string) =>
  Effect.tryPromise({ try: () => fs.lstat(path), catch: (e) => e }).pipe(
    Effect.matchEffect({
      onFailure: (e) =>
        isMissing(e)
          ? Effect.void
          : Effect.fail(fail(new AlreadyExists({ path, what: `${what} (unreadable)` }))),
      onSuccess: () => Effect.fail(fail(new AlreadyExists({ path, what })))
    })
  )

/**
 * Checks, stages and packs `from` into a checked tarball at `out` (which must not exist), in a
 * private temporary directory removed afterwards. Shared by releases and the image overlay.
 */
export const packTree = Effect.fn("Release.packTree")(function* (options: {
  readonly from: string
  readonly out: string
  readonly layout: Layout
  /** The release's version (layout `release` only). */
  readonly version?: string
  readonly mtime?: Date
}) {
  const from = resolve(options.from)
  const out = resolve(options.out)
  // Output inside the tree would be packed into the next build (old releases inside new ones).
  if (out.startsWith(`${from}/`))
    return yield* Effect.fail(
      fail(
        new TreeRejected({
          tree: from,
          violations: [
            {
              path: display(relative(from, out)),
              check: "output-inside",
              message: "the output is inside the tree"
            }
          ]
        })
      )
    )
  const fromStat = yield* io("read the tree", from, () => fs.stat(from))
  if (!fromStat.isDirectory())
    return yield* Effect.fail(
      fail(
        new TreeRejected({
          tree: from,
          violations: [{ path: "./", check: "root", message: "not a directory" }]
        })
      )
    )
  const entries = yield* walkTree(from)
  const violations = treeViolations(entries, options.layout)
  const versionFile = entries.find((e) => e.path === "VERSION" && e.kind === "file")
  if (options.layout === "release" && options.version === undefined)
    return yield* Effect.fail(fail(new InvalidVersion({ version: "", reason: "a release needs a version" })))
  if (options.layout === "release" && versionFile !== undefined) {
    const text = (yield* io("read VERSION", versionFile.absolute, () =>
      fs.readFile(versionFile.absolute, "utf8")
    )).trim()
    if (text !== options.version)
      violations.push({
        path: "./VERSION",
        check: "version",
        message: `holds ${JSON.stringify(text)}, but the release is ${options.version}`
      })
  }
  if (violations.length > 0) return yield* Effect.fail(fail(new TreeRejected({ tree: from, violations })))
  return yield* Effect.acquireUseRelease(
    io("create a staging directory", tmpdir(), () => fs.mkdtemp(join(tmpdir(), "archy-stage-"))),
    (tmp) =>
      Effect.gen(function* () {
        const staged = join(tmp, "tree")
        yield* stage(entries, staged)
        if (options.layout === "release" && !entries.some((e) => e.path === "VERSION"))
          yield* io("write VERSION", staged, () =>
            fs.writeFile(join(staged, "VERSION"), `${options.version}\n`, { mode: 0o644 })
          )
        const packed = join(tmp, "packed.tar.gz")
        yield* writeTarball(yield* walkTree(staged), packed, options.mtime ?? defaultMtime())
        // The checks run on the finished tarball, not on the tree it came from.
        const report = yield* assertTarball(packed, { layout: options.layout })
        if (options.layout === "release" && report.version !== options.version)
          return yield* Effect.fail(
            fail(
              new TarballMismatch({
                file: join(from, "VERSION"),
                field: "VERSION",
                expected: options.version ?? "",
                actual: report.version ?? "(none)"
              })
            )
          )
        yield* io("create the output directory", options.out, () =>
          fs.mkdir(resolve(options.out, ".."), { recursive: true })
        )
        const tmpOut = tempNameFor(options.out)
        yield* io("copy the tarball", tmpOut, () => fs.copyFile(packed, tmpOut, fs.constants.COPYFILE_EXCL))
        yield* io("fsync the tarball", tmpOut, async () => {
          const h = await fs.open(tmpOut, "r")
          try {
            await h.sync()
          } finally {
            await h.close()
          }
        }).pipe(Effect.tapError(() => Effect.promise(() => fs.rm(tmpOut, { force: true }))))
        yield* refuseExisting(options.out, "a published file").pipe(
          Effect.tapError(() => Effect.promise(() => fs.rm(tmpOut, { force: true })))
        )
        yield* commitFile(tmpOut, options.out)
        return yield* digestFile(options.out)
      }),
    (tmp) => Effect.promise(() => fs.rm(tmp, { recursive: true, force: true }))
  )
})

export interface BuildOptions {
  /** The staged tree (`bin/archy`, `lib/archy.mjs`, `web/`, `apps/`, optional `VERSION`). */
  readonly from: string
  readonly version: string
  /** PKCS#8 PEM ed25519 private key (from `generateKeyPair`). */
  readonly keyFile: string
  readonly outDir: string
  /** Entry mtime; `defaultMtime()` when absent. */
  readonly mtime?: Date
}

export interface BuildResult {
  readonly tarball: string
  readonly manifestFile: string
  readonly signatureFile: string
  readonly manifest: ReleaseManifest
}

/**
 * Builds, checks and signs release `version` from `from` into `outDir`, then points
 * `latest.release.json` (+ `.sig`) at it. Refuses to overwrite a version already in `outDir`:
 * published versions are immutable.
 */
export const buildRelease = Effect.fn("Release.buildRelease")(function* (options: BuildOptions) {
  const version = yield* validateVersion(options.version)
  const privateKey = yield* loadPrivateKey(options.keyFile)
  const outDir = resolve(options.outDir)
  const names = releaseFiles(version)
  const tarball = join(outDir, names.tarball)
  const manifestFile = join(outDir, names.manifest)
  const signatureFile = join(outDir, names.signature)
  for (const f of [tarball, manifestFile, signatureFile]) yield* refuseExisting(f, `release ${version}`)
  const { sha256, size } = yield* packTree({
    from: options.from,
    out: tarball,
    layout: "release",
    version,
    ...(options.mtime === undefined ? {} : { mtime: options.mtime })
  })
  const created = new Date(yield* Clock.currentTimeMillis).toISOString()
  const manifest: ReleaseManifest = { format: 1, version, file: names.tarball, sha256, size, created }
  const bytes = encodeManifest(manifest)
  const signature = Buffer.from(signBytes(bytes, privateKey))
  yield* writeFileAtomic(manifestFile, bytes, 0o644)
  yield* writeFileAtomic(signatureFile, signature, 0o644)
  yield* writeFileAtomic(join(outDir, latestManifest), bytes, 0o644)
  yield* writeFileAtomic(join(outDir, latestSignature), signature, 0o644)
  return { tarball, manifestFile, signatureFile, manifest } satisfies BuildResult
})
