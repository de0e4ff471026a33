/**
 * The simulation's command line (see test/sim/run): runs seeds of `Simulation.run` over the
 * fixture catalog one after another, prints each failing seed with its first violation and the
 * tail of its trace, then runs/second; exits 1 when a seed failed, 2 on bad flags.
 */
import { parseArgs } from "node:util"
import * as Faults from "@archy/testkit/Faults"
import { readManifests } from "@archy/testkit/ManifestFiles"
import * as Prng from "@archy/testkit/Prng"
import * as Simulation from "@archy/testkit/Simulation"
import * as Effect from "effect/Effect"
import { fixtureAppsDir } from "../fixtures/fixtures.ts"

const usage = `usage: test/sim/run [--seeds N] [--seed S] [--variant atomic|in-place-writes]
                    [--include SITE]... [--exclude SITE]... [--trace] [--tail N] [--apps DIR]
  SEED=S test/sim/run   replays seed S (decimal, 0x-hex or a commit hash) with its whole trace
fault sites: ${Faults.allSites.join(", ")}
off unless --include: ${Faults.defaultExcluded.join(", ") || "none"}`

const die = (message: string): never => {
  process.stderr.write(`test/sim/run: ${message}\n${usage}\n`)
  process.exit(2)
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        seeds: { type: "string" },
        seed: { type: "string" },
        variant: { type: "string", default: "atomic" },
        include: { type: "string", multiple: true, default: [] },
        exclude: { type: "string", multiple: true, default: [] },
        trace: { type: "boolean", default: false },
        tail: { type: "string", default: "15" },
        apps: { type: "string", default: fixtureAppsDir },
        help: { type: "boolean", default: false }
      }
    })
  } catch (e) {
    return die(e instanceof Error ? e.message : String(e))
  }
})()
if (values.help) {
  process.stdout.write(`${usage}\n`)
  process.exit(0)
}

const parseSeedFlag = (name: string, text: string): bigint =>
  Prng.parseSeed(text) ??
  die(`${name} must be an unsigned 64-bit integer, 0x-hex or a commit hash, not "${text}"`)
const site = (s: string): Faults.Site =>
  (Faults.allSites as ReadonlyArray<string>).includes(s)
    ? (s as Faults.Site)
    : die(`unknown fault site "${s}"`)
const variant =
  values.variant === "atomic" || values.variant === "in-place-writes"
    ? values.variant
    : die(`unknown variant "${values.variant}"`)
const count = values.seeds === undefined ? 1 : Number(values.seeds)
if (!Number.isInteger(count) || count < 1) die(`--seeds must be a positive integer, not "${values.seeds}"`)
const tail = Number(values.tail)
const envSeed =
  process.env.SEED !== undefined && process.env.SEED !== ""
    ? parseSeedFlag("SEED", process.env.SEED)
    : undefined
const first =
  envSeed ?? (values.seed !== undefined ? parseSeedFlag("--seed", values.seed) : Prng.randomSeed())
const replay = envSeed !== undefined || (values.seed !== undefined && values.seeds === undefined)
const include = new Set(values.include.map(site))
const exclude = [
  ...new Set([...Faults.defaultExcluded.filter((s) => !include.has(s)), ...values.exclude.map(site)])
]
const manifests = readManifests(values.apps)
if (manifests.length === 0) die(`no manifests in ${values.apps}`)

process.stdout.write(
  count === 1 ? `SEED=${first}\n` : `SEED=${first} (${count} seeds: ${first}..${first + BigInt(count - 1)})\n`
)
const fullTrace = values.trace || replay
const started = performance.now()
const failed: Array<bigint> = []
for (let i = 0; i < count; i++) {
  const seed = (first + BigInt(i)) % 2n ** 64n
  const result = await Effect.runPromise(Simulation.run({ seed, manifests, variant, exclude }))
  if (fullTrace) process.stdout.write(`${result.trace.join("\n")}\n`)
  if (!result.ok) {
    failed.push(seed)
    const v = result.violation!
    process.stdout.write(
      `FAIL SEED=${seed}: ${v.invariant} (${v.phase}, at ${(v.atMs / 1000).toFixed(3)} s): ${v.detail}\n` +
        (fullTrace
          ? ""
          : `  trace tail:\n${result.trace
              .slice(-tail)
              .map((l) => `    ${l}`)
              .join("\n")}\n`) +
        `  replay: SEED=${seed} test/sim/run${variant === "atomic" ? "" : ` --variant ${variant}`}\n`
    )
  }
}
const seconds = (performance.now() - started) / 1000
process.stdout.write(
  `${count} runs in ${seconds.toFixed(1)} s (${(count / seconds).toFixed(1)} runs/s), ${failed.length} failed` +
    (failed.length > 0 ? `: ${failed.join(" ")}` : "") +
    "\n"
)
process.exit(failed.length > 0 ? 1 : 0)
