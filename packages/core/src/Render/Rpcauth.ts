/**
 * bitcoind `rpcauth=` lines, byte-compatible with Bitcoin Core's share/rpcauth/rpcauth.py. The
 * only departure is the salt: rpcauth.py draws it at random, but renders must be pure and
 * byte-stable, so the salt is derived from the password instead. bitcoind only ever checks
 * HMAC(salt, password) against the line, so a derived salt is as valid as a random one.
 */
import { hmac } from "@noble/hashes/hmac.js"
import { sha256 } from "@noble/hashes/sha2.js"
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js"
import * as Redacted from "effect/Redacted"
import { fail } from "./Params.ts"

const SALT_CONTEXT = "archipelago rpcauth salt v1"

/**
 * bitcoind splits the value on ':' and strips `#` comments anywhere on a line, and HTTP Basic
 * auth splits on the first ':', so such users could never authenticate.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const BAD_USER = /[:#\s\u0000-\u001f\u007f]/

export const validateRpcUser = (renderer: string, user: string): string => {
  if (user.length === 0) return fail(renderer, "rpc user must not be empty")
  if (BAD_USER.test(user)) {
    return fail(renderer, `rpc user "${user}" must not contain ':', '#', whitespace or control characters`)
  }
  return user
}

export const validateRpcPassword = (renderer: string, password: Redacted.Redacted<string>): string => {
  const plain = Redacted.value(password)
  return plain.length === 0 ? fail(renderer, "rpc password must not be empty") : plain
}

/** The 32-hex-char salt for a password: first 16 bytes of HMAC-SHA256(password, context). */
export const rpcauthSalt = (password: Redacted.Redacted<string>): string =>
  bytesToHex(hmac(sha256, utf8ToBytes(Redacted.value(password)), utf8ToBytes(SALT_CONTEXT)).subarray(0, 16))

/** As rpcauth.py: the key is the salt's hex text (not its bytes), the message the password. */
export const rpcauthHmac = (salt: string, password: Redacted.Redacted<string>): string =>
  bytesToHex(hmac(sha256, utf8ToBytes(salt), utf8ToBytes(Redacted.value(password))))

/** `rpcauth=<user>:<salt>$<hmac>`; throws RenderError on an unusable user or empty password. */
export const rpcauthLine = (user: string, password: Redacted.Redacted<string>): string => {
  validateRpcUser("rpcauth", user)
  validateRpcPassword("rpcauth", password)
  const salt = rpcauthSalt(password)
  return `rpcauth=${user}:${salt}$${rpcauthHmac(salt, password)}`
}
