/**
 * The release manifest (`archy-<V>.release.json`) and its signature (`.sig`: base64 of the
 * ed25519 signature over the file's exact bytes). Signatures are checked on the bytes as
 * fetched, before any parsing; the JSON is decoded only once it verifies.
 */
import { type KeyObject, sign, verify } from "node:crypto"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { fail, ManifestInvalid, SignatureInvalid } from "./ReleaseError.ts"
import { versionProblem } from "./Version.ts"

export const ReleaseManifest = Schema.Struct({
  format: Schema.Literal(1),
  version: Schema.String,
  /** The tarball's file name, relative to the manifest (mirrors serve both side by side). */
  file: Schema.String,
  sha256: Schema.String.check(Schema.isPattern(/^[0-9a-f]{64}$/, { expected: "64 lowercase hex digits" })),
  size: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  created: Schema.String
})
export type ReleaseManifest = typeof ReleaseManifest.Type

/** The manifest's bytes as written: two-space JSON and a final newline. */
export const encodeManifest = (manifest: ReleaseManifest): Uint8Array =>
  Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, "utf8")

/** base64 of the ed25519 signature over `bytes` (no trailing newline). */
export const signBytes = (bytes: Uint8Array, privateKey: KeyObject): string =>
  sign(null, bytes, privateKey).toString("base64")

const decode = Schema.decodeUnknownResult(ReleaseManifest)

/** Decodes manifest bytes (already verified) into a ReleaseManifest. `file` names it in errors. */
export const decodeManifest = (bytes: Uint8Array, file: string) =>
  Effect.gen(function* () {
    const invalid = (reason: string) => Effect.fail(fail(new ManifestInvalid({ file, reason })))
    let json: unknown
    try {
      json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes))
    } catch (e) {
      return yield* invalid(`not UTF-8 JSON (${e instanceof Error ? e.message : String(e)})`)
    }
    const result = decode(json)
    if (result._tag === "Failure") return yield* invalid(String(result.failure))
    const manifest = result.success
    const problem = versionProblem(manifest.version)
    if (problem !== undefined)
      return yield* invalid(`version ${JSON.stringify(manifest.version)}: ${problem}`)
    if (manifest.file.includes("/") || manifest.file.startsWith("."))
      return yield* invalid(`file ${JSON.stringify(manifest.file)} must be a plain file name`)
    if (Number.isNaN(Date.parse(manifest.created)))
      return yield* invalid(`created ${JSON.stringify(manifest.created)} is not an ISO-8601 time`)
    return manifest
  })

/**
 * Verifies `signatureText` (base64) over the exact manifest `bytes` with `publicKey`, then decodes
 * them. The names are for error messages only (a URL is fine).
 */
export const verifyManifestBytes = (options: {
  readonly bytes: Uint8Array
  readonly signatureText: string
  readonly publicKey: KeyObject
  readonly manifestFile: string
  readonly signatureFile: string
}) =>
  Effect.gen(function* () {
    const { manifestFile, signatureFile } = options
    const bad = (reason: string) =>
      Effect.fail(fail(new SignatureInvalid({ manifestFile, signatureFile, reason })))
    const text = options.signatureText.trim()
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return yield* bad("the signature file is not base64")
    const signature = Buffer.from(text, "base64")
    if (signature.length !== 64)
      return yield* bad(`the signature is ${signature.length} bytes, an ed25519 signature is 64`)
    if (!verify(null, options.bytes, options.publicKey, signature))
      return yield* bad("the signature does not match (wrong key, or the manifest was changed)")
    return yield* decodeManifest(options.bytes, manifestFile)
  })
