/**
 * The checks every release tarball must pass, run on the finished tarball (never the tree it came
 * from): the root entry `./` is drwxr-xr-x (field failure FM5: a 0700 root made nginx answer 500
 * on every node that updated), directories 0755, files 0644 or 0755, owner root, only files,
 * directories and symlinks, no absolute paths, no `..`, no duplicates, no entry under a symlink,
 * no symlink leaving the tree, and, for a release, the layout the node runs (`bin/archy`,
 * `lib/archy.mjs`, `web/index.html`, `apps/`, `VERSION`).
 */
import * as Effect from "effect/Effect"
import { ancestorsOf, canonical, display, linkEscape, parentOf } from "./internal/EntryPath.ts"
import { forEachEntry, type TarHeader } from "./internal/TarReader.ts"
import { fail, TarballRejected, type Violation } from "./ReleaseError.ts"
import { versionProblem } from "./Version.ts"

/** `release` adds the release layout checks; `any` checks safety and modes only (image overlays). */
export type Layout = "release" | "any"

export interface TarballReport {
  readonly violations: ReadonlyArray<Violation>
  /** The trimmed text of `./VERSION`, when the tarball has one. */
  readonly version: string | undefined
  readonly entries: number
}

const octal = (mode: number) => mode.toString(8).padStart(4, "0")
const rwx = (mode: number) =>
  [6, 3, 0]
    .map((s) => `${mode & (4 << s) ? "r" : "-"}${mode & (2 << s) ? "w" : "-"}${mode & (1 << s) ? "x" : "-"}`)
    .join("")
/** `drwx------ (0700)`. */
export const describeMode = (type: string, mode: number): string =>
  `${type === "directory" ? "d" : type === "symlink" ? "l" : "-"}${rwx(mode)} (${octal(mode)})`

interface Seen {
  readonly type: string
  readonly mode: number
}

/** Collects violations entry by entry; `finish` adds the whole-tarball checks. */
export class TarballChecker {
  readonly violations: Array<Violation> = []
  private readonly seen = new Map<string, Seen>()
  private readonly links = new Map<string, string>()
  private readonly order: Array<string> = []
  private readonly beforeParent = new Set<string>()
  version: string | undefined = undefined

  private add(path: string, check: string, message: string) {
    this.violations.push({ path, check, message })
  }

  /** Checks one entry; returns its canonical path when the path itself is acceptable. */
  entry(h: TarHeader): string | undefined {
    const c = canonical(h.name)
    if (c._tag === "Bad") {
      this.add(h.name, c.check, c.message)
      return undefined
    }
    const path = c.path
    const where = display(path)
    switch (h.type) {
      case "file":
      case "directory":
      case "symlink":
        break
      case "link":
        this.add(where, "entry-type", `hard link to ${h.linkname ?? "?"}; releases carry no hard links`)
        return undefined
      case "character-device":
      case "block-device":
      case "fifo":
        this.add(where, "entry-type", `${h.type} entry; releases hold only files, directories and symlinks`)
        return undefined
      default:
        this.add(where, "entry-type", `unsupported entry type ${h.type}`)
        return undefined
    }
    if (this.seen.has(path)) {
      this.add(where, "duplicate", "appears more than once; a later entry would replace the earlier one")
      return undefined
    }
    // Checked as entries stream, not only at the end: extraction must never write through a
    // symlink it has just created, even if the tarball changed since it was first checked.
    const through = ancestorsOf(path).find((a) => this.links.has(a))
    if (through !== undefined) {
      this.add(where, "through-symlink", `lies under the symlink ${display(through)}`)
      return undefined
    }
    if (path !== "" && !this.seen.has(parentOf(path))) this.beforeParent.add(path)
    this.seen.set(path, { type: h.type, mode: h.mode })
    this.order.push(path)
    if (h.uid !== 0 || h.gid !== 0) this.add(where, "owner", `owner ${h.uid}:${h.gid}, expected 0:0 (root)`)
    if (path === "" && h.type !== "directory")
      this.add(where, "root", `the root is a ${h.type}, not a directory`)
    else if (path === "" && h.mode !== 0o755)
      this.add(
        where,
        "root-mode",
        `root directory is ${describeMode(h.type, h.mode)}, expected drwxr-xr-x (0755): ` +
          "nginx and every service not running as root could not read the release (FM5)"
      )
    else if (h.type === "directory" && h.mode !== 0o755)
      this.add(where, "dir-mode", `directory is ${describeMode(h.type, h.mode)}, expected drwxr-xr-x (0755)`)
    else if (h.type === "file" && h.mode !== 0o644 && h.mode !== 0o755)
      this.add(
        where,
        "file-mode",
        `file is ${describeMode(h.type, h.mode)}, expected -rw-r--r-- (0644) or -rwxr-xr-x (0755)`
      )
    if (h.type === "symlink") this.links.set(path, h.linkname ?? "")
    return path
  }

  /** The checks that need every entry: root present, parents, symlinks, layout. */
  finish(layout: Layout): ReadonlyArray<Violation> {
    if (!this.seen.has("")) this.add("./", "root-missing", "no ./ entry: the root directory's mode is unset")
    for (const path of this.order) {
      if (path === "") continue
      const through = ancestorsOf(path).find((a) => this.seen.get(a)?.type === "symlink")
      if (through !== undefined) {
        this.add(display(path), "through-symlink", `lies under the symlink ${display(through)}`)
        continue
      }
      const parent = this.seen.get(parentOf(path))
      // A missing root is reported once, as root-missing.
      if (parent === undefined && parentOf(path) === "") continue
      if (parent === undefined)
        this.add(display(path), "parent-missing", `its directory ${display(parentOf(path))} has no entry`)
      else if (parent.type !== "directory")
        this.add(display(path), "parent-not-dir", `its parent ${display(parentOf(path))} is a ${parent.type}`)
      else if (this.beforeParent.has(path))
        this.add(display(path), "parent-order", `comes before its directory ${display(parentOf(path))}`)
    }
    for (const [path, target] of this.links) {
      const escapes = linkEscape(path, target, this.links)
      if (escapes !== undefined) this.add(display(path), "link-escape", `symlink ${escapes}`)
    }
    if (layout === "release") this.layout()
    return this.violations
  }

  private layout() {
    const need = (path: string, type: string, what: string) => {
      const e = this.seen.get(path)
      if (e === undefined) this.add(display(path), "layout", `missing: a release needs ${what}`)
      else if (e.type !== type)
        this.add(display(path), "layout", `is a ${e.type}, expected a ${type} (${what})`)
      return e
    }
    const launcher = need("bin/archy", "file", "the launcher bin/archy")
    if (launcher?.type === "file" && launcher.mode !== 0o755)
      this.add(
        "./bin/archy",
        "layout",
        `the launcher is ${describeMode("file", launcher.mode)}, expected 0755`
      )
    need("lib/archy.mjs", "file", "the bundle lib/archy.mjs")
    need("web/index.html", "file", "the web UI's web/index.html")
    need("apps", "directory", "the apps catalog apps/")
    if (need("VERSION", "file", "the VERSION file")?.type === "file") {
      const problem = this.version === undefined ? "cannot be read" : versionProblem(this.version)
      if (problem !== undefined) this.add("./VERSION", "layout", `holds no valid version: ${problem}`)
    }
  }

  /** Keeps VERSION's text when the body of `path` is small enough to be a version. */
  wantsBody(path: string | undefined, h: TarHeader): boolean {
    return path === "VERSION" && h.type === "file" && h.size <= 256
  }
}

const readAll = async (body: AsyncIterable<Buffer>) => {
  const chunks: Array<Buffer> = []
  for await (const chunk of body) chunks.push(chunk)
  return Buffer.concat(chunks).toString("utf8")
}

/**
 * Every violation of `file` (a gzip'd tar), in entry order then whole-tarball checks. Fails only
 * when the file cannot be read as a gzip'd tar at all.
 */
export const inspectTarball = Effect.fn("Release.inspectTarball")(function* (
  file: string,
  options?: { readonly layout?: Layout }
) {
  const checker = new TarballChecker()
  let entries = 0
  yield* forEachEntry(file, async (header, body) => {
    entries++
    const path = checker.entry(header)
    if (checker.wantsBody(path, header)) checker.version = (await readAll(body)).trim()
  })
  const violations = checker.finish(options?.layout ?? "release")
  return { violations, version: checker.version, entries } satisfies TarballReport
})

/** The violations of `file` against the release checks (empty when it passes). */
export const checkTarball = (file: string, options?: { readonly layout?: Layout }) =>
  Effect.map(inspectTarball(file, options), (r) => r.violations)

/** Fails with TarballRejected listing every violation, or succeeds with the report. */
export const assertTarball = (file: string, options?: { readonly layout?: Layout }) =>
  Effect.flatMap(inspectTarball(file, options), (report) =>
    report.violations.length === 0
      ? Effect.succeed(report)
      : Effect.fail(fail(new TarballRejected({ file, violations: report.violations })))
  )
