/**
 * The one error type of release tooling, with a tagged reason per way a release can be refused
 * or fail. Each reason says what and where (which file or entry, which check); `message` is the
 * line a person reads. Schema-backed: the OTA client records these in its persisted reports.
 */
import * as Schema from "effect/Schema"

/** One failed check of a tree or a tarball: where (entry path, `./` for the root) and what. */
export const Violation = Schema.Struct({
  path: Schema.String,
  check: Schema.String,
  message: Schema.String
})
export type Violation = typeof Violation.Type

/** Formats a violation as one line: `./bin/archy: mode 0700, expected 0755 (mode)`. */
export const formatViolation = (v: Violation): string => `${v.path}: ${v.message} (${v.check})`

export class InvalidVersion extends Schema.TaggedError<InvalidVersion>()("InvalidVersion", {
  version: Schema.String,
  reason: Schema.String
}) {}

/** The source tree cannot become a release (fifo, link leaving the tree, missing launcher, …). */
export class TreeRejected extends Schema.TaggedError<TreeRejected>()("TreeRejected", {
  tree: Schema.String,
  violations: Schema.Array(Violation)
}) {}

/** A tarball failed the checks (modes, owners, paths, links, entry types, layout). */
export class TarballRejected extends Schema.TaggedError<TarballRejected>()("TarballRejected", {
  file: Schema.String,
  violations: Schema.Array(Violation)
}) {}

/** Not a readable gzip'd tar at all (truncated, not gzip, bad header checksum). */
export class TarballUnreadable extends Schema.TaggedError<TarballUnreadable>()("TarballUnreadable", {
  file: Schema.String,
  reason: Schema.String
}) {}

export class SignatureInvalid extends Schema.TaggedError<SignatureInvalid>()("SignatureInvalid", {
  manifestFile: Schema.String,
  signatureFile: Schema.String,
  reason: Schema.String
}) {}

export class ManifestInvalid extends Schema.TaggedError<ManifestInvalid>()("ManifestInvalid", {
  file: Schema.String,
  reason: Schema.String
}) {}

/** The tarball is not the one the manifest describes (sha256, size or version differ). */
export class TarballMismatch extends Schema.TaggedError<TarballMismatch>()("TarballMismatch", {
  file: Schema.String,
  field: Schema.String,
  expected: Schema.String,
  actual: Schema.String
}) {}

export class KeyInvalid extends Schema.TaggedError<KeyInvalid>()("KeyInvalid", {
  file: Schema.String,
  reason: Schema.String
}) {}

/** A refused overwrite: a published version, an existing key, an existing release dir. */
export class AlreadyExists extends Schema.TaggedError<AlreadyExists>()("AlreadyExists", {
  path: Schema.String,
  what: Schema.String
}) {}

/** A file system step failed: which step, on which path, and the system's own reason. */
export class IoFailed extends Schema.TaggedError<IoFailed>()("IoFailed", {
  path: Schema.String,
  step: Schema.String,
  reason: Schema.String
}) {}

export const ReleaseErrorReason = Schema.Union([
  InvalidVersion,
  TreeRejected,
  TarballRejected,
  TarballUnreadable,
  SignatureInvalid,
  ManifestInvalid,
  TarballMismatch,
  KeyInvalid,
  AlreadyExists,
  IoFailed
])
export type ReleaseErrorReason = typeof ReleaseErrorReason.Type

const describe = (r: ReleaseErrorReason): string => {
  switch (r._tag) {
    case "InvalidVersion":
      return `invalid version ${JSON.stringify(r.version)}: ${r.reason}`
    case "TreeRejected":
      return `${r.tree} cannot be released, ${r.violations.length} problem(s):\n${r.violations
        .map((v) => `  ${formatViolation(v)}`)
        .join("\n")}`
    case "TarballRejected":
      return `${r.file} fails ${r.violations.length} check(s):\n${r.violations
        .map((v) => `  ${formatViolation(v)}`)
        .join("\n")}`
    case "TarballUnreadable":
      return `${r.file} is not a readable gzip'd tar: ${r.reason}`
    case "SignatureInvalid":
      return `signature ${r.signatureFile} does not verify ${r.manifestFile}: ${r.reason}`
    case "ManifestInvalid":
      return `release manifest ${r.file} is invalid: ${r.reason}`
    case "TarballMismatch":
      return `${r.file} does not match its manifest: ${r.field} is ${r.actual}, the manifest says ${r.expected}`
    case "KeyInvalid":
      return `key ${r.file}: ${r.reason}`
    case "AlreadyExists":
      return `${r.path} already exists (${r.what}); refusing to overwrite it`
    case "IoFailed":
      return `${r.step} ${r.path} failed: ${r.reason}`
  }
}

export class ReleaseError extends Schema.TaggedError<ReleaseError>()("ReleaseError", {
  reason: ReleaseErrorReason
}) {
  override get message(): string {
    return describe(this.reason)
  }
}

/** Lifts a reason into the error channel: `return yield* fail(new IoFailed({...}))`. */
export const fail = (reason: ReleaseErrorReason) => new ReleaseError({ reason })
