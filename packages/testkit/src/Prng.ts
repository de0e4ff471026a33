/**
 * The simulation's one source of randomness: a small seeded PRNG (xoshiro128**, seeded through
 * splitmix32), synchronous so the fakes can draw from it inside any call. Same seed, same
 * sequence, on every machine: no `Math.random`, no clock.
 *
 * Seeds are unsigned integers up to 2^64 - 1, written in decimal or as hex (`0x…`, or a 40-digit
 * git commit hash, whose first 16 digits are taken), as TigerBeetle's VOPR accepts them.
 */

export interface Prng {
  /** A float in [0, 1). */
  readonly next: () => number
  /** An integer in [0, n). */
  readonly int: (n: number) => number
  /** True with probability p. */
  readonly chance: (p: number) => boolean
  /** One element of a non-empty array. */
  readonly pick: <A>(items: ReadonlyArray<A>) => A
}

/** Parses `SEED`: decimal, `0x` hex, or a commit hash. Undefined when it is none of them. */
export const parseSeed = (text: string): bigint | undefined => {
  const t = text.trim().toLowerCase()
  if (/^[0-9]{1,20}$/.test(t)) {
    const n = BigInt(t)
    return n < 2n ** 64n ? n : undefined
  }
  if (/^0x[0-9a-f]{1,16}$/.test(t)) return BigInt(t)
  if (/^[0-9a-f]{40}$/.test(t)) return BigInt(`0x${t.slice(0, 16)}`)
  return undefined
}

const splitmix32 = (state: { s: number }) => () => {
  state.s = (state.s + 0x9e3779b9) | 0
  let z = state.s
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return (z ^ (z >>> 16)) >>> 0
}

const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k))

export const make = (seed: bigint): Prng => {
  const mix = splitmix32({ s: Number(seed & 0xffffffffn) ^ Math.imul(Number(seed >> 32n), 0x27d4eb2d) })
  let a = mix()
  let b = mix()
  let c = mix()
  let d = mix()
  if ((a | b | c | d) === 0) a = 1
  const nextU32 = () => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0
    const t = b << 9
    c ^= a
    d ^= b
    b ^= c
    a ^= d
    c ^= t
    d = rotl(d, 11)
    return result
  }
  const next = () => nextU32() / 4294967296
  return {
    next,
    int: (n) => Math.floor(next() * n),
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)]!
  }
}

/** A fresh random seed for a run without `SEED` (the only non-deterministic draw). */
export const randomSeed = (): bigint =>
  (BigInt(Math.floor(Math.random() * 2 ** 32)) << 32n) | BigInt(Math.floor(Math.random() * 2 ** 32))
