/**
 * Content hashes for drift detection: a container spec's hash goes into a label and is compared
 * on every pass; a rendered file's hash is compared with the bytes on disk. Pure JS (no Node
 * crypto) so the core stays free of platform imports.
 */
import { sha256 } from "@noble/hashes/sha2.js"
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js"

/** JSON with object keys sorted at every level, so equal values always hash equally. */
export const canonicalJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        )
      : v
  )

/** sha256 of the UTF-8 bytes of `text`, lowercase hex. */
export const sha256Hex = (text: string): string => bytesToHex(sha256(utf8ToBytes(text)))

/** A short, stable hash of any JSON value (64 bits is plenty to notice a change). */
export const shortHash = (value: unknown): string => sha256Hex(canonicalJson(value)).slice(0, 16)
