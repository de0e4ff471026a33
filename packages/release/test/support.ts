/** Test trees and hand-made tarballs for the release tests (real files in a temp dir). */
import { spawnSync } from "node:child_process"
import {
  chmodSync,
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { createGunzip, gzipSync } from "node:zlib"
import * as tar from "tar-stream"

const made: Array<string> = []
export const tempDir = (prefix = "archy-release-test-"): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  made.push(dir)
  return dir
}
export const cleanup = () => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true })
}

/** Writes files (path -> content) under `root`, creating directories 0755. */
export const writeTree = (root: string, files: Record<string, string>) => {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true, mode: 0o755 })
    writeFileSync(join(root, path), content)
  }
}

/** A minimal valid release tree in a new directory (modes as a careful person sets them). */
export const releaseTree = (version?: string): string => {
  const root = join(tempDir(), "tree")
  mkdirSync(root, { mode: 0o755 })
  writeTree(root, {
    "bin/archy": "#!/bin/sh\necho archy\n",
    "lib/archy.mjs": "console.log('archy')\n",
    "web/index.html": "<h1>Archipelago</h1>\n",
    "apps/demo/manifest.yml": "id: demo\n",
    ...(version === undefined ? {} : { VERSION: `${version}\n` })
  })
  chmodSync(join(root, "bin/archy"), 0o755)
  chmodSync(root, 0o755)
  return root
}

export const mkfifo = (path: string) => {
  const r = spawnSync("mkfifo", [path])
  if (r.status !== 0) throw new Error(`mkfifo ${path} failed: ${r.stderr}`)
}

export interface RawEntry {
  readonly name: string
  readonly type?: "file" | "directory" | "symlink" | "link" | "fifo" | "character-device"
  readonly mode?: number
  readonly uid?: number
  readonly gid?: number
  readonly linkname?: string
  readonly body?: string
}

/** A hand-made gzip'd tar with exactly these headers (what a broken or hostile builder emits). */
export const rawTarball = async (file: string, entries: ReadonlyArray<RawEntry>) => {
  const pack = tar.pack()
  const chunks: Array<Buffer> = []
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer)
  })()
  for (const e of entries) {
    const type = e.type ?? "file"
    await new Promise<void>((resolve, reject) => {
      const header = {
        name: e.name,
        type,
        mode: e.mode ?? (type === "directory" ? 0o755 : 0o644),
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        mtime: new Date(946_684_800_000),
        ...(e.linkname === undefined ? {} : { linkname: e.linkname })
      }
      const cb = (err?: Error | null) => (err ? reject(err) : resolve())
      if (type === "file") pack.entry(header, e.body ?? "", cb)
      else pack.entry(header, cb)
    })
  }
  pack.finalize()
  await collected
  writeFileSync(file, gzipSync(Buffer.concat(chunks)))
  return file
}

/** The entries of a valid release, as raw headers; tests change one thing at a time. */
export const validEntries = (version = "1.0.0"): Array<RawEntry> => [
  { name: "./", type: "directory" },
  { name: "./VERSION", body: `${version}\n` },
  { name: "./apps", type: "directory" },
  { name: "./bin", type: "directory" },
  { name: "./bin/archy", mode: 0o755, body: "#!/bin/sh\n" },
  { name: "./lib", type: "directory" },
  { name: "./lib/archy.mjs", body: "//\n" },
  { name: "./web", type: "directory" },
  { name: "./web/index.html", body: "<h1>x</h1>\n" }
]

export interface ReadEntry {
  readonly name: string
  readonly type: string
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly mtime: number
  readonly linkname: string | null
}

/** Reads a tarball's headers back with tar-stream directly (independent of the code under test). */
export const readEntries = async (file: string): Promise<Array<ReadEntry>> => {
  const extract = tar.extract()
  createReadStream(file).pipe(createGunzip()).pipe(extract)
  const out: Array<ReadEntry> = []
  for await (const entry of extract) {
    const h = entry.header
    out.push({
      name: h.name,
      type: h.type,
      mode: h.mode & 0o7777,
      uid: h.uid,
      gid: h.gid,
      mtime: h.mtime.getTime(),
      linkname: h.linkname
    })
    for await (const _ of entry) {
      // skip the body
    }
  }
  return out
}

export const listDir = (dir: string): Array<string> => readdirSync(dir).sort()
