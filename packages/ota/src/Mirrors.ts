/**
 * Fetching a release from the update mirrors, tried in order: `<mirror>/latest.release.json` and
 * its `.sig`, the signature checked against the pinned public key over the exact bytes served,
 * then `<mirror>/<file>` streamed to a temporary file outside the install with its size and
 * sha256 checked on the way. A mirror that is down, times out, or serves anything that fails a
 * check is recorded with why, and the next one is tried. Nothing here writes into the install.
 */
import { createHash, type KeyObject } from "node:crypto"
import { createWriteStream } from "node:fs"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { loadPublicKey as loadKey, type ReleaseManifest, verifyManifestBytes } from "@archy/release"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { isVersion } from "./Decide.ts"

/** Largest manifest or signature accepted from a mirror. */
const maxSmallFileBytes = 64 * 1024

/** One mirror that did not work, and why. */
export interface MirrorAttempt {
  readonly mirror: string
  readonly reason: string
  /** The mirror served a valid release, just not one to update to (this version or older). */
  readonly notNewer?: string
}

/** The public key file cannot be read or is not an ed25519 public key. */
export class PublicKeyError extends Data.TaggedError("PublicKeyError")<{
  readonly file: string
  readonly reason: string
}> {
  override get message(): string {
    return `the release public key ${this.file} ${this.reason}: updates cannot be verified`
  }
}

/** Every mirror failed; each attempt says why. */
export class NoMirrorWorked extends Data.TaggedError("NoMirrorWorked")<{
  readonly attempts: ReadonlyArray<MirrorAttempt>
}> {
  override get message(): string {
    if (this.attempts.length === 0)
      return "no update mirror is configured (--update-mirrors, ARCHY_UPDATE_MIRRORS)"
    return `no update mirror served a valid release: ${this.attempts.map((a) => `${a.mirror}: ${a.reason}`).join("; ")}`
  }
}

export interface MirrorOptions {
  readonly mirrors: ReadonlyArray<string>
  readonly publicKeyFile: string
  /** Per request for the small files; for the tarball, the longest pause between two chunks. */
  readonly timeoutMs: number
}

/** A manifest whose signature checked out, and where it came from. */
export interface SignedRelease {
  readonly mirror: string
  readonly manifest: ReleaseManifest
  readonly manifestBytes: Uint8Array
  readonly signature: string
}

/** A release whose tarball is on disk, checked; `dispose` removes the temporary directory. */
export interface DownloadedRelease extends SignedRelease {
  readonly dir: string
  readonly tarball: string
  readonly manifestFile: string
  readonly signatureFile: string
  readonly dispose: Effect.Effect<void>
}

/** Parses the comma- or space-separated mirror list (`http(s)://host[:port][/path]`). */
export const parseMirrors = (text: string): ReadonlyArray<string> =>
  text
    .split(/[\s,]+/)
    .map((m) => m.trim().replace(/\/+$/, ""))
    .filter((m) => m !== "")

class Bad extends Data.TaggedError("Bad")<{ readonly reason: string }> {}

const describe = (e: unknown): string => {
  if (e instanceof Error) {
    if (e.name === "TimeoutError" || e.name === "AbortError") return "timed out"
    const cause = (e as { cause?: unknown }).cause
    return cause instanceof Error ? `${e.message} (${cause.message})` : e.message
  }
  return String(e)
}

const getSmall = (url: string, timeoutMs: number) =>
  Effect.tryPromise({
    try: async (signal) => {
      const res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) })
      if (res.status !== 200) {
        await res.body?.cancel()
        throw new Error(`${url}: HTTP ${res.status}`)
      }
      const bytes = new Uint8Array(await res.arrayBuffer())
      if (bytes.length > maxSmallFileBytes) throw new Error(`${url}: larger than ${maxSmallFileBytes} bytes`)
      return bytes
    },
    catch: (e) => new Bad({ reason: describe(e) })
  })

/** The pinned ed25519 public key (SPKI PEM file). */
export const loadPublicKey = (file: string) =>
  loadKey(file).pipe(Effect.mapError((e) => new PublicKeyError({ file, reason: e.message })))

/** The signed manifest of one mirror, checked, or why not. */
const signedFrom = (mirror: string, key: KeyObject, timeoutMs: number) =>
  Effect.gen(function* () {
    const manifestUrl = `${mirror}/latest.release.json`
    const manifestBytes = yield* getSmall(manifestUrl, timeoutMs)
    const sigBytes = yield* getSmall(`${manifestUrl}.sig`, timeoutMs)
    const signature = new TextDecoder().decode(sigBytes).trim()
    // The signature is checked over the bytes as served, before any parsing.
    const manifest = yield* verifyManifestBytes({
      bytes: manifestBytes,
      signatureText: signature,
      publicKey: key,
      manifestFile: manifestUrl,
      signatureFile: `${manifestUrl}.sig`
    }).pipe(Effect.mapError((e) => new Bad({ reason: e.message })))
    // The version names a directory under releases/.
    if (!isVersion(manifest.version))
      return yield* new Bad({
        reason: `${manifestUrl}: version ${JSON.stringify(manifest.version)} cannot name a release directory`
      })
    return { mirror, manifest, manifestBytes, signature } satisfies SignedRelease
  })

/** Streams `url` into `file`, refusing more than `size` bytes; resolves with the sha256 and byte count. */
const download = (url: string, file: string, size: number, idleMs: number) =>
  Effect.tryPromise({
    try: async (signal) => {
      const idle = new AbortController()
      let timer = setTimeout(() => idle.abort(), idleMs)
      const res = await fetch(url, { signal: AbortSignal.any([signal, idle.signal]) })
      if (res.status !== 200 || res.body === null) {
        await res.body?.cancel()
        throw new Error(`${url}: HTTP ${res.status}`)
      }
      const hash = createHash("sha256")
      const out = createWriteStream(file, { mode: 0o600 })
      let writeError: Error | undefined
      out.on("error", (e) => {
        writeError = e
      })
      let bytes = 0
      try {
        for await (const chunk of res.body) {
          clearTimeout(timer)
          timer = setTimeout(() => idle.abort(), idleMs)
          bytes += chunk.length
          if (bytes > size) throw new Error(`${url}: more than the manifest's ${size} bytes`)
          hash.update(chunk)
          if (writeError !== undefined) throw new Error(`writing ${file}: ${writeError.message}`)
          if (!out.write(chunk))
            await new Promise<void>((r) => {
              out.once("drain", () => r())
              out.once("error", () => r())
            })
        }
      } finally {
        clearTimeout(timer)
        await new Promise<void>((r) => (writeError !== undefined ? r() : out.end(() => r())))
      }
      if (writeError !== undefined) throw new Error(`writing ${file}: ${writeError.message}`)
      return { sha256: hash.digest("hex"), bytes }
    },
    catch: (e) => new Bad({ reason: describe(e) })
  })

/**
 * The first mirror that serves a valid signed release `wanted` accepts (newer than the running
 * one); the others are recorded with why they were passed over, so a stale mirror first in the
 * list never hides a newer release on the next one.
 */
export const check = (options: MirrorOptions, wanted: (manifest: ReleaseManifest) => boolean) =>
  Effect.gen(function* () {
    const key = yield* loadPublicKey(options.publicKeyFile)
    const attempts: Array<MirrorAttempt> = []
    for (const mirror of options.mirrors) {
      const r = yield* Effect.result(signedFrom(mirror, key, options.timeoutMs))
      if (r._tag === "Failure") attempts.push({ mirror, reason: r.failure.reason })
      else if (wanted(r.success.manifest)) return { offer: r.success, attempts }
      else attempts.push(notNewer(mirror, r.success.manifest))
    }
    if (attempts.some((a) => a.notNewer !== undefined)) return { offer: undefined, attempts }
    return yield* new NoMirrorWorked({ attempts })
  })

const notNewer = (mirror: string, m: ReleaseManifest): MirrorAttempt => ({
  mirror,
  reason: `offers ${m.version}, not an update`,
  notNewer: m.version
})

/**
 * The first mirror whose manifest verifies and whose tarball matches it (size, sha256), downloaded
 * into a new temporary directory with the manifest and signature beside it.
 * A mirror whose release `wanted` refuses (not newer) is passed over like a failing one.
 */
export const fetchRelease = (options: MirrorOptions, wanted: (manifest: ReleaseManifest) => boolean) =>
  Effect.gen(function* () {
    const key = yield* loadPublicKey(options.publicKeyFile)
    const attempts: Array<MirrorAttempt> = []
    for (const mirror of options.mirrors) {
      const signed = yield* Effect.result(signedFrom(mirror, key, options.timeoutMs))
      if (signed._tag === "Failure") {
        attempts.push({ mirror, reason: signed.failure.reason })
        continue
      }
      const m = signed.success.manifest
      if (!wanted(m)) {
        attempts.push(notNewer(mirror, m))
        continue
      }
      const dir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "archy-ota-")))
      const dispose = Effect.promise(() => rm(dir, { recursive: true, force: true }))
      const tarball = join(dir, m.file)
      const got = yield* Effect.result(
        download(`${mirror}/${m.file}`, tarball, m.size, options.timeoutMs).pipe(
          Effect.flatMap((d) =>
            d.bytes !== m.size
              ? Effect.fail(new Bad({ reason: `${m.file}: ${d.bytes} bytes, the manifest says ${m.size}` }))
              : d.sha256 !== m.sha256
                ? Effect.fail(
                    new Bad({ reason: `${m.file}: sha256 ${d.sha256}, the manifest says ${m.sha256}` })
                  )
                : Effect.void
          ),
          Effect.onInterrupt(() => dispose)
        )
      )
      if (got._tag === "Failure") {
        yield* dispose
        attempts.push({ mirror, reason: got.failure.reason })
        continue
      }
      const manifestFile = join(dir, `archy-${m.version}.release.json`)
      const signatureFile = `${manifestFile}.sig`
      yield* Effect.promise(async () => {
        await writeFile(manifestFile, signed.success.manifestBytes, { mode: 0o600 })
        await writeFile(signatureFile, `${signed.success.signature}\n`, { mode: 0o600 })
      })
      return {
        ...signed.success,
        dir,
        tarball,
        manifestFile,
        signatureFile,
        dispose
      } satisfies DownloadedRelease
    }
    return yield* new NoMirrorWorked({ attempts })
  })
