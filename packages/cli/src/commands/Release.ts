/**
 * `archy release keygen|build|verify`: signing keys, signed release builds, and the checks on any
 * tarball (see packages/release). A refused build or a failed check prints what and where, one
 * line per problem, and exits 1.
 */
import { readFile } from "node:fs/promises"
import {
  buildRelease,
  checkDigest,
  decodeManifest,
  fail,
  formatViolation,
  generateKeyPair,
  IoFailed,
  inspectTarball,
  packTree,
  type ReleaseError,
  verifyManifestFile
} from "@archy/release"
import * as Console from "effect/Console"
import { Argument, Command, Flag } from "effect/cli"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Reported } from "../Reported.ts"

/** Prints a ReleaseError's message to stderr and turns it into Reported (exit 1, nothing more). */
const reportErrors = <A, R>(effect: Effect.Effect<A, ReleaseError, R>) =>
  Effect.catch(effect, (e) =>
    Console.error(`archy release: ${e.message}`).pipe(Effect.andThen(Effect.fail(new Reported())))
  )

const keygen = Command.make(
  "keygen",
  {
    out: Flag.String("out").pipe(
      Flag.withDescription("Private key file to write (0600); the public key goes to OUT.pub (0644)")
    )
  },
  Effect.fn(function* ({ out }) {
    const files = yield* reportErrors(generateKeyPair({ out }))
    yield* Console.log(`private key: ${files.privateKeyFile} (0600, keep it off the nodes)`)
    yield* Console.log(`public key:  ${files.publicKeyFile} (install on nodes to verify releases)`)
  })
).pipe(Command.withDescription("Generate an ed25519 release signing key pair"))

const build = Command.make(
  "build",
  {
    from: Flag.String("from").pipe(
      Flag.withDescription(
        "Staged release tree (bin/archy, lib/archy.mjs, web/, apps/; see scripts/stage-release)"
      )
    ),
    version: Flag.String("version").pipe(Flag.withDescription("Release version (semver, e.g. 1.4.0)")),
    key: Flag.String("key").pipe(Flag.withDescription("Private signing key (from archy release keygen)")),
    out: Flag.String("out").pipe(Flag.withDescription("Release directory (a mirror): archy-V.* and latest.*"))
  },
  Effect.fn(function* ({ from, version, key, out }) {
    const result = yield* reportErrors(buildRelease({ from, version, keyFile: key, outDir: out }))
    yield* Console.log(`built ${result.tarball}`)
    yield* Console.log(`  sha256 ${result.manifest.sha256}, ${result.manifest.size} bytes`)
    yield* Console.log(`  manifest ${result.manifestFile} (+ .sig), latest.release.json points to ${version}`)
  })
).pipe(Command.withDescription("Build, check and sign a release tarball from a staged tree"))

const verify = Command.make(
  "verify",
  {
    file: Argument.String("file").pipe(Argument.withDescription("The release tarball (.tar.gz)")),
    manifest: Flag.String("manifest").pipe(
      Flag.withDescription("Release manifest to check the tarball's size and sha256 against"),
      Flag.optional
    ),
    signature: Flag.String("signature").pipe(
      Flag.withDescription("Signature of the manifest (default: MANIFEST.sig)"),
      Flag.optional
    ),
    pubkey: Flag.String("pubkey").pipe(
      Flag.withDescription("Public key (SPKI PEM) to verify the manifest's signature with"),
      Flag.optional
    )
  },
  Effect.fn(function* ({ file, manifest, signature, pubkey }) {
    let failed = false
    let expectedVersion: string | undefined
    const problem = (line: string) => {
      failed = true
      return Console.log(`FAIL  ${line}`)
    }
    if (Option.isSome(manifest)) {
      const decoded = yield* Option.isSome(pubkey)
        ? verifyManifestFile({
            manifestFile: manifest.value,
            publicKey: pubkey.value,
            ...(Option.isSome(signature) ? { signatureFile: signature.value } : {})
          }).pipe(
            Effect.tap(() => Console.log(`ok    signature of ${manifest.value}`)),
            Effect.map(Option.some),
            Effect.catch((e) => problem(e.message).pipe(Effect.as(Option.none())))
          )
        : Console.log("note  signature not checked: no --pubkey").pipe(
            Effect.andThen(
              Effect.tryPromise({
                try: () => readFile(manifest.value),
                catch: (e) => fail(new IoFailed({ step: "read", path: manifest.value, reason: String(e) }))
              })
            ),
            Effect.flatMap((bytes) => decodeManifest(bytes, manifest.value)),
            Effect.map(Option.some),
            Effect.catch((e) => problem(e.message).pipe(Effect.as(Option.none())))
          )
      if (Option.isSome(decoded)) {
        expectedVersion = decoded.value.version
        yield* checkDigest(file, decoded.value).pipe(
          Effect.andThen(Console.log(`ok    size and sha256 match ${manifest.value}`)),
          Effect.catch((e) => problem(e.message))
        )
      }
    } else if (Option.isSome(pubkey)) {
      yield* Console.error(
        "archy release verify: --pubkey needs --manifest (the signature is over the manifest)"
      )
      return yield* new Reported()
    }
    const report = yield* inspectTarball(file).pipe(
      Effect.map(Option.some),
      Effect.catch((e) => problem(e.message).pipe(Effect.as(Option.none())))
    )
    if (Option.isSome(report)) {
      for (const v of report.value.violations) yield* problem(formatViolation(v))
      if (expectedVersion !== undefined && report.value.version !== expectedVersion)
        yield* problem(
          `./VERSION: ${report.value.version ?? "(none)"}, the manifest says ${expectedVersion} (version)`
        )
      if (!failed)
        yield* Console.log(
          `ok    ${report.value.entries} entries pass the release checks (version ${report.value.version})`
        )
    }
    if (failed) return yield* new Reported()
  })
).pipe(Command.withDescription("Check a release tarball (and its manifest and signature when given)"))

const pack = Command.make(
  "pack",
  {
    from: Flag.String("from").pipe(
      Flag.withDescription("Directory to pack (its root must be world-readable)")
    ),
    out: Flag.String("out").pipe(Flag.withDescription("The .tar.gz to write (must not exist)"))
  },
  Effect.fn(function* ({ from, out }) {
    const { sha256, size } = yield* reportErrors(packTree({ from, out, layout: "any" }))
    yield* Console.log(`packed ${out}: sha256 ${sha256}, ${size} bytes`)
  })
).pipe(
  Command.withDescription(
    "Pack any tree (e.g. the image overlay) like a release: normalized modes, root owner, checked; unsigned"
  )
)

export const release = Command.make("release").pipe(
  Command.withDescription("Build, sign and verify orchestrator releases"),
  Command.withSubcommands([keygen, build, verify, pack])
)
