/**
 * Streams the entries of a gzip'd tar (tar-stream behind node:zlib) without unpacking it. Every
 * reader of release tarballs goes through here, so the checks and the extraction parse the
 * bytes the same way.
 */
import { createReadStream } from "node:fs"
import { createGunzip } from "node:zlib"
import * as Effect from "effect/Effect"
import * as tar from "tar-stream"
import { fail, ReleaseError, TarballUnreadable } from "../ReleaseError.ts"
import { reasonOf } from "./Io.ts"

export interface TarHeader {
  readonly name: string
  readonly type: string
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size: number
  readonly linkname: string | undefined
  readonly mtime: Date | undefined
}

/**
 * Calls `onEntry` for each entry in order with its header and body. The callback may read the
 * body or not (what it leaves is skipped); it reports its own failures as ReleaseError. Anything
 * else that goes wrong (not gzip, truncated, bad checksum) is TarballUnreadable.
 */
export const forEachEntry = (
  file: string,
  onEntry: (header: TarHeader, body: AsyncIterable<Buffer>) => Promise<void>
) =>
  Effect.tryPromise({
    try: async () => {
      const extract = tar.extract()
      const source = createReadStream(file)
      const gunzip = createGunzip()
      source.on("error", (e) => extract.destroy(e))
      gunzip.on("error", (e) => extract.destroy(e))
      source.pipe(gunzip).pipe(extract)
      try {
        for await (const entry of extract) {
          const h = entry.header
          await onEntry(
            {
              name: h.name,
              type: h.type ?? "file",
              mode: (h.mode ?? 0) & 0o7777,
              uid: h.uid ?? 0,
              gid: h.gid ?? 0,
              size: h.size ?? 0,
              linkname: h.linkname || undefined,
              mtime: h.mtime
            },
            entry as AsyncIterable<Buffer>
          )
          for await (const _ of entry) {
            // drain what the callback left unread
          }
        }
      } finally {
        source.destroy()
      }
    },
    catch: (e) => (e instanceof ReleaseError ? e : fail(new TarballUnreadable({ file, reason: reasonOf(e) })))
  })
