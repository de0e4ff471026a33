import { labels, type ObservedContainer } from "@archy/core/Observed"
import { assert, describe, it } from "@effect/vitest"
import { type HealthPolicy, judge, overlayHealth } from "../src/Health.ts"

const policy: HealthPolicy = { startPeriodMs: 60_000, retries: 3, intervalMs: 10_000 }
const started = 1_000_000
const fail = { healthy: false, output: "error: RPC in warmup: Loading block index…\n" }
const pass = { healthy: true, output: "" }

describe("judge", () => {
  it("counts failures in the start period as progress, with the check's words", () => {
    const r = judge(undefined, fail, { nowMs: started + 10_000, startedAtMs: started }, policy)
    assert.strictEqual(r.status, "starting")
    assert.strictEqual(r.failures, 1)
    assert.include(r.reason, "in the start period")
    assert.include(r.reason, "Loading block index")
  })

  it("is unhealthy only after `retries` failures in a row past the start period", () => {
    let r = judge(undefined, fail, { nowMs: started + 70_000, startedAtMs: started }, policy)
    assert.strictEqual(r.status, "starting")
    r = judge(r, fail, { nowMs: started + 80_000, startedAtMs: started }, policy)
    assert.strictEqual(r.status, "starting")
    r = judge(r, fail, { nowMs: started + 90_000, startedAtMs: started }, policy)
    assert.strictEqual(r.status, "unhealthy")
    assert.match(r.reason, /^health check failed 3 times: error: RPC in warmup/)
    r = judge(r, pass, { nowMs: started + 100_000, startedAtMs: started }, policy)
    assert.deepStrictEqual([r.status, r.failures], ["healthy", 0])
  })

  it("starts over when the container restarted", () => {
    const before = judge(
      undefined,
      fail,
      { nowMs: started + 200_000, startedAtMs: started },
      { ...policy, retries: 1 }
    )
    assert.strictEqual(before.status, "unhealthy")
    const after = judge(before, fail, { nowMs: started + 210_000, startedAtMs: started + 205_000 }, policy)
    assert.deepStrictEqual([after.status, after.failures], ["starting", 1])
  })
})

describe("overlayHealth", () => {
  const c: ObservedContainer = {
    id: "c1",
    name: "bitcoind",
    image: "x",
    labels: { [labels.app]: "b" },
    state: "running",
    startedAtMs: started
  }
  const record = {
    status: "healthy" as const,
    reason: "",
    checkedAtMs: started + 1,
    failures: 0,
    startedAtMs: started
  }

  it("shows our verdict on the container it was made for", () => {
    assert.strictEqual(overlayHealth([c], new Map([["bitcoind", record]]))[0]!.health, "healthy")
  })

  it("ignores a verdict from an earlier start, or for a container that is not running", () => {
    const restarted = { ...c, startedAtMs: started + 5_000 }
    assert.isUndefined(overlayHealth([restarted], new Map([["bitcoind", record]]))[0]!.health)
    const exited = { ...c, state: "exited" as const }
    assert.isUndefined(overlayHealth([exited], new Map([["bitcoind", record]]))[0]!.health)
  })
})
