import { existsSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { fixtureAppsDir } from "../../../test/fixtures/fixtures.ts"
import { readManifests } from "../src/ManifestFiles.ts"
import * as Simulation from "../src/Simulation.ts"

const manifests = readManifests(fixtureAppsDir)
// Seconds of CPU each; far more on a busy machine.
const slow = 120_000

const firstFailing = (variant: Simulation.Variant, from: bigint, count: number) =>
  Effect.gen(function* () {
    for (let i = 0n; i < BigInt(count); i++) {
      const result = yield* Simulation.run({ seed: from + i, manifests, variant })
      if (!result.ok) return result
    }
    return undefined
  })

describe("Simulation", () => {
  it.effect(
    "a seed replays byte for byte; another seed is another run",
    () =>
      Effect.gen(function* () {
        const a = yield* Simulation.run({ seed: 7n, manifests })
        const b = yield* Simulation.run({ seed: 7n, manifests })
        assert.isAbove(a.trace.length, 20)
        assert.strictEqual(a.trace.join("\n"), b.trace.join("\n"))
        assert.strictEqual(a.trace[0]!.trim().split(" ")[1], "SEED=7")
        const c = yield* Simulation.run({ seed: 8n, manifests })
        assert.notStrictEqual(a.trace.join("\n"), c.trace.join("\n"))
        // Everything happened on the in-memory disk: nothing of the node's reached the host.
        assert.isFalse(existsSync(Simulation.nodeConfig.dataRoot))
      }),
    slow
  )

  it.effect(
    "the engine as it is holds every invariant and converges on 10 seeds",
    () =>
      Effect.gen(function* () {
        const failed = yield* firstFailing("atomic", 1000n, 10)
        assert.isUndefined(
          failed,
          failed === undefined
            ? ""
            : `SEED=${failed.seed}: ${failed.violation!.invariant}: ${failed.violation!.detail}`
        )
      }),
    slow
  )

  it.effect(
    "a broken executor that writes files in place is caught, and its seed replays",
    () =>
      Effect.gen(function* () {
        const failed = yield* firstFailing("in-place-writes", 1n, 100)
        assert.isDefined(failed, "no seed of 100 caught files written in place")
        assert.strictEqual(failed!.violation!.invariant, "no-torn-file")
        const again = yield* Simulation.run({ seed: failed!.seed, manifests, variant: "in-place-writes" })
        assert.deepStrictEqual(again.violation, failed!.violation)
        assert.strictEqual(again.trace.join("\n"), failed!.trace.join("\n"))
      }),
    slow
  )
})
