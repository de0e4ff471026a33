/**
 * Release signing keys: ed25519, private key as PKCS#8 PEM (0600), public key as SPKI PEM (0644)
 * next to it as `<KEYFILE>.pub`. Loading checks the key type, so an RSA key or a public key
 * passed as the signing key is refused by name.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto"
import * as fs from "node:fs/promises"
import * as Effect from "effect/Effect"
import { io, isMissing, reasonOf } from "./internal/Io.ts"
import { writeFileAtomic } from "./internal/WriteAtomic.ts"
import { AlreadyExists, fail, KeyInvalid } from "./ReleaseError.ts"

/** Where keygen wrote the pair. */
export interface KeyPairFiles {
  readonly privateKeyFile: string
  readonly publicKeyFile: string
}

const refuseExisting = (path: string, what: string) =>
  Effect.flatMap(
    Effect.tryPromise({ try: () => fs.lstat(path), catch: (e) => e }).pipe(
      Effect.map(() => true),
      Effect.catch((e) => (isMissing(e) ? Effect.succeed(false) : Effect.succeed(true)))
    ),
    (exists) => (exists ? Effect.fail(fail(new AlreadyExists({ path, what }))) : Effect.void)
  )

/**
 * Generates an ed25519 pair into `out` (0600) and `out.pub` (0644). Never overwrites: losing a
 * signing key strands every node that trusts it.
 */
export const generateKeyPair = Effect.fn("Release.generateKeyPair")(function* (options: {
  readonly out: string
}) {
  const publicKeyFile = `${options.out}.pub`
  yield* refuseExisting(options.out, "a signing key")
  yield* refuseExisting(publicKeyFile, "a public key")
  const { privateKey, publicKey } = generateKeyPairSync("ed25519")
  const privatePem = privateKey.export({ type: "pkcs8", format: "pem" }) as string
  const publicPem = publicKey.export({ type: "spki", format: "pem" }) as string
  yield* writeFileAtomic(options.out, Buffer.from(privatePem), 0o600)
  yield* writeFileAtomic(publicKeyFile, Buffer.from(publicPem), 0o644)
  return { privateKeyFile: options.out, publicKeyFile } satisfies KeyPairFiles
})

const ed25519 = (file: string, key: KeyObject) =>
  key.asymmetricKeyType === "ed25519"
    ? Effect.succeed(key)
    : Effect.fail(
        fail(
          new KeyInvalid({ file, reason: `an ${key.asymmetricKeyType ?? "unknown"} key, expected ed25519` })
        )
      )

/** Reads a PKCS#8 PEM ed25519 private key. */
export const loadPrivateKey = Effect.fn("Release.loadPrivateKey")(function* (file: string) {
  const pem = yield* io("read the key", file, () => fs.readFile(file, "utf8"))
  const key = yield* Effect.try({
    try: () => createPrivateKey(pem),
    catch: (e) => fail(new KeyInvalid({ file, reason: `not a PEM private key (${reasonOf(e)})` }))
  })
  return yield* ed25519(file, key)
})

/**
 * An ed25519 public key from a KeyObject, a PEM text (`-----BEGIN PUBLIC KEY-----…`), or the path
 * of a SPKI PEM file.
 */
export type PublicKeyInput = KeyObject | string

export const loadPublicKey = Effect.fn("Release.loadPublicKey")(function* (input: PublicKeyInput) {
  if (typeof input !== "string") return yield* ed25519("(key object)", input)
  const isPem = input.trimStart().startsWith("-----BEGIN")
  const file = isPem ? "(PEM text)" : input
  const pem = isPem ? input : yield* io("read the public key", input, () => fs.readFile(input, "utf8"))
  const key = yield* Effect.try({
    try: () => createPublicKey(pem),
    catch: (e) => fail(new KeyInvalid({ file, reason: `not a PEM public key (${reasonOf(e)})` }))
  })
  if (key.type !== "public")
    return yield* Effect.fail(
      fail(new KeyInvalid({ file, reason: "a private key where a public key is expected" }))
    )
  return yield* ed25519(file, key)
})
