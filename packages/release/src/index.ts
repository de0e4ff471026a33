/**
 * Release tooling shared by the CLI (`archy release keygen|build|verify`), the OTA client and the
 * image overlay build: signed, mode-normalized, checked release tarballs (see README "Releases").
 */
export {
  type BuildOptions,
  type BuildResult,
  buildRelease,
  defaultMtime,
  digestFile,
  latestManifest,
  latestSignature,
  normalizedMode,
  packTree,
  releaseFiles
} from "./Build.ts"
export { type ExtractResult, extractRelease } from "./Extract.ts"
export {
  generateKeyPair,
  type KeyPairFiles,
  loadPrivateKey,
  loadPublicKey,
  type PublicKeyInput
} from "./Keys.ts"
export * from "./ReleaseError.ts"
export {
  decodeManifest,
  encodeManifest,
  ReleaseManifest,
  signBytes,
  verifyManifestBytes
} from "./ReleaseManifest.ts"
export {
  assertTarball,
  checkTarball,
  describeMode,
  inspectTarball,
  type Layout,
  type TarballReport
} from "./Tarball.ts"
export {
  checkDigest,
  checkReleaseTarball,
  type VerifyOptions,
  verifyManifestFile,
  verifyRelease
} from "./Verify.ts"
export { compareVersions, validateVersion, versionProblem } from "./Version.ts"
