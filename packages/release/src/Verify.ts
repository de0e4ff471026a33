/**
 * `verifyRelease`: is this tarball the release its signed manifest describes, and does it pass
 * the tarball checks? In order: the signature over the manifest's exact bytes, the manifest's
 * shape, the tarball's size and sha256, every tarball check, and VERSION against the manifest.
 */
import * as fs from "node:fs/promises"
import * as Effect from "effect/Effect"
import { digestFile } from "./Build.ts"
import { io } from "./internal/Io.ts"
import { loadPublicKey, type PublicKeyInput } from "./Keys.ts"
import { fail, TarballMismatch } from "./ReleaseError.ts"
import { type ReleaseManifest, verifyManifestBytes } from "./ReleaseManifest.ts"
import { assertTarball } from "./Tarball.ts"

export interface VerifyOptions {
  readonly manifestFile: string
  /** Default: `<manifestFile>.sig`. */
  readonly signatureFile?: string
  readonly tarball: string
  /** A KeyObject, a SPKI PEM text, or the path of a SPKI PEM file. */
  readonly publicKey: PublicKeyInput
}

/** Reads and verifies a manifest and its signature from files; the decoded manifest on success. */
export const verifyManifestFile = Effect.fn("Release.verifyManifestFile")(function* (options: {
  readonly manifestFile: string
  readonly signatureFile?: string
  readonly publicKey: PublicKeyInput
}) {
  const signatureFile = options.signatureFile ?? `${options.manifestFile}.sig`
  const publicKey = yield* loadPublicKey(options.publicKey)
  const bytes = yield* io("read the manifest", options.manifestFile, () => fs.readFile(options.manifestFile))
  const signatureText = yield* io("read the signature", signatureFile, () =>
    fs.readFile(signatureFile, "utf8")
  )
  return yield* verifyManifestBytes({
    bytes,
    signatureText,
    publicKey,
    manifestFile: options.manifestFile,
    signatureFile
  })
})

/** Fails with TarballMismatch when `tarball`'s size or sha256 is not the manifest's. */
export const checkDigest = Effect.fn("Release.checkDigest")(function* (
  tarball: string,
  manifest: ReleaseManifest
) {
  const { sha256, size } = yield* digestFile(tarball)
  if (size !== manifest.size)
    return yield* Effect.fail(
      fail(
        new TarballMismatch({
          file: tarball,
          field: "size",
          expected: String(manifest.size),
          actual: String(size)
        })
      )
    )
  if (sha256 !== manifest.sha256)
    return yield* Effect.fail(
      fail(new TarballMismatch({ file: tarball, field: "sha256", expected: manifest.sha256, actual: sha256 }))
    )
})

/** Checks the tarball against the manifest's VERSION and the release checks. */
export const checkReleaseTarball = Effect.fn("Release.checkReleaseTarball")(function* (
  tarball: string,
  manifest: ReleaseManifest
) {
  const report = yield* assertTarball(tarball, { layout: "release" })
  if (report.version !== manifest.version)
    return yield* Effect.fail(
      fail(
        new TarballMismatch({
          file: tarball,
          field: "VERSION",
          expected: manifest.version,
          actual: report.version ?? "(none)"
        })
      )
    )
  return report
})

/** Verifies a release end to end; the decoded manifest when everything holds. */
export const verifyRelease = Effect.fn("Release.verifyRelease")(function* (options: VerifyOptions) {
  const manifest = yield* verifyManifestFile(options)
  yield* checkDigest(options.tarball, manifest)
  yield* checkReleaseTarball(options.tarball, manifest)
  return manifest
})
