/**
 * Writes a gzip'd tar of a directory with every header field chosen here, not taken from the
 * machine: names `./…`, owner root (0:0), one fixed mtime, the modes as staged. gzip's own header
 * carries no time or name, so the same tree gives the same bytes.
 */
import { createWriteStream } from "node:fs"
import * as fs from "node:fs/promises"
import { pipeline } from "node:stream/promises"
import { createGzip } from "node:zlib"
import * as Effect from "effect/Effect"
import * as tar from "tar-stream"
import { display } from "./EntryPath.ts"
import { io } from "./Io.ts"
import type { TreeEntry } from "./TreeWalk.ts"

const addEntry = (pack: tar.Pack, header: Partial<tar.Header> & { readonly name: string }, body?: Buffer) =>
  new Promise<void>((resolve, reject) => {
    const done = (e?: Error | null) => (e ? reject(e) : resolve())
    if (body === undefined) pack.entry(header, done)
    else pack.entry(header, body, done)
  })

/** Packs `entries` (from walkTree over a staged tree, so only dirs, files and symlinks) into `out`. */
export const writeTarball = (entries: ReadonlyArray<TreeEntry>, out: string, mtime: Date) =>
  io("write the tarball", out, async () => {
    const pack = tar.pack()
    const written = pipeline(
      async function* () {
        for await (const chunk of pack) yield chunk
      },
      createGzip({ level: 9 }),
      createWriteStream(out, { flags: "wx", mode: 0o644 })
    )
    try {
      for (const e of entries) {
        const common = { mode: e.mode, uid: 0, gid: 0, uname: "root", gname: "root", mtime }
        const name = e.path === "" ? "./" : display(e.path)
        if (e.kind === "directory") await addEntry(pack, { ...common, name, type: "directory" })
        else if (e.kind === "symlink")
          await addEntry(pack, { ...common, mode: 0o777, name, type: "symlink", linkname: e.target ?? "" })
        else if (e.kind === "file")
          await addEntry(pack, { ...common, name, type: "file" }, await fs.readFile(e.absolute))
        else throw new Error(`${name} is a ${e.kind}; only files, directories and symlinks can be packed`)
      }
      pack.finalize()
    } catch (e) {
      pack.destroy(e as Error)
      throw e
    } finally {
      await written.catch(() => undefined)
    }
    await written
  }).pipe(Effect.asVoid)
