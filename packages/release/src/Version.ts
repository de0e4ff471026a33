/**
 * Release versions: semver 2.0 strings (`1.4.0`, `2.0.0-rc.1`, `1.0.0+build.7`). They become file
 * names (`archy-<V>.tar.gz`) and directory names on the node (`releases/<V>/`), so nothing else is
 * accepted: no `/`, no spaces, no leading `v`, at most 64 characters.
 */
import * as Effect from "effect/Effect"
import { fail, InvalidVersion } from "./ReleaseError.ts"

const ident = "(?:0|[1-9]\\d*|\\d*[A-Za-z-][0-9A-Za-z-]*)"
const semver = new RegExp(
  `^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-(${ident}(?:\\.${ident})*))?(?:\\+([0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*))?$`
)

/** Why `version` is not a release version, or `undefined` when it is one. */
export const versionProblem = (version: string): string | undefined => {
  if (version.length === 0) return "it is empty"
  if (version.length > 64) return `it is ${version.length} characters long, at most 64 are allowed`
  if (version.includes("/")) return "it contains '/'"
  if (!semver.test(version))
    return "expected a semver version such as 1.4.0, 2.0.0-rc.1 or 1.0.0+build.7 (no leading 'v')"
  return undefined
}

/** Succeeds with `version` when it is a valid release version, else fails with InvalidVersion. */
export const validateVersion = (version: string) => {
  const reason = versionProblem(version)
  return reason === undefined
    ? Effect.succeed(version)
    : Effect.fail(fail(new InvalidVersion({ version, reason })))
}

/**
 * Semver precedence: negative when `a` is older than `b`, 0 when equal (build metadata is
 * ignored), positive when newer. Both must be valid versions.
 */
export const compareVersions = (a: string, b: string): number => {
  const pa = semver.exec(a)
  const pb = semver.exec(b)
  if (pa === null || pb === null) throw new Error(`not release versions: ${a}, ${b}`)
  for (const i of [1, 2, 3]) {
    const d = Number(pa[i]) - Number(pb[i])
    if (d !== 0) return Math.sign(d)
  }
  const preA = pa[4]
  const preB = pb[4]
  if (preA === undefined || preB === undefined) return preA === preB ? 0 : preA === undefined ? 1 : -1
  const xs = preA.split(".")
  const ys = preB.split(".")
  for (let i = 0; i < Math.max(xs.length, ys.length); i++) {
    const x = xs[i]
    const y = ys[i]
    if (x === undefined) return -1
    if (y === undefined) return 1
    const nx = /^\d+$/.test(x)
    const ny = /^\d+$/.test(y)
    if (nx && ny) {
      const d = Number(x) - Number(y)
      if (d !== 0) return Math.sign(d)
    } else if (nx !== ny) return nx ? -1 : 1
    else if (x !== y) return x < y ? -1 : 1
  }
  return 0
}
