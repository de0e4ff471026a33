import { assert, describe, it } from "vitest"
import { decideAtBoot, isUpdate, isVersion, type PendingMarker, toPrune } from "../src/Decide.ts"

const marker = (over: Partial<PendingMarker> = {}): PendingMarker => ({
  from: "1.0.0",
  to: "1.1.0",
  at: "2026-11-26T08:00:00.000Z",
  boots: 1,
  ...over
})
const limits = { maxBoots: 3 }

describe("decideAtBoot", () => {
  it("does nothing without a marker", () => {
    assert.deepStrictEqual(decideAtBoot(undefined, "1.0.0", limits), { _tag: "NoUpdate" })
  })
  it("verifies the new release while it has boots left", () => {
    assert.strictEqual(decideAtBoot(marker({ boots: 1 }), "1.1.0", limits)._tag, "Verify")
    assert.strictEqual(decideAtBoot(marker({ boots: 3 }), "1.1.0", limits)._tag, "Verify")
  })
  it("rolls back unprobed once the new release started more than maxBoots times", () => {
    const d = decideAtBoot(marker({ boots: 4 }), "1.1.0", limits)
    assert.strictEqual(d._tag, "RollBack")
    if (d._tag === "RollBack") assert.match(d.failure.error, /started 3 times without reaching a verdict/)
  })
  it("an apply killed before the switch is interrupted, not verified", () => {
    assert.strictEqual(decideAtBoot(marker(), "1.0.0", limits)._tag, "Interrupted")
  })
  it("a rollback killed after switching back is finished, with its recorded reason", () => {
    const failure = { probe: "web-ui" as const, status: 500, error: "expected HTTP 200" }
    const d = decideAtBoot(marker({ rollback: failure }), "1.0.0", limits)
    assert.deepStrictEqual(d, { _tag: "FinishRollback", marker: marker({ rollback: failure }), failure })
  })
  it("a rollback killed before switching back is carried out again", () => {
    const failure = { probe: "daemon" as const, error: "connection refused" }
    assert.strictEqual(decideAtBoot(marker({ rollback: failure }), "1.1.0", limits)._tag, "RollBack")
  })
  it("gives up when current is neither side, or the rollback itself keeps dying", () => {
    assert.strictEqual(decideAtBoot(marker(), "0.9.0", limits)._tag, "GiveUp")
    assert.strictEqual(decideAtBoot(marker(), undefined, limits)._tag, "GiveUp")
    assert.strictEqual(decideAtBoot(marker({ boots: 6 }), "1.1.0", limits)._tag, "GiveUp")
    assert.strictEqual(decideAtBoot(marker({ boots: 5 }), "1.1.0", limits)._tag, "RollBack")
  })
})

describe("versions", () => {
  it("offers only newer releases (a replayed old manifest is not an update)", () => {
    assert.isTrue(isUpdate("1.1.0", "1.0.0"))
    assert.isFalse(isUpdate("1.0.0", "1.0.0"))
    assert.isFalse(isUpdate("0.9.0", "1.0.0"))
    assert.isTrue(isUpdate("1.10.0", "1.9.2"))
    assert.isFalse(isUpdate("2.0.0-rc.1", "2.0.0"))
  })
  it("accepts only safe directory names", () => {
    for (const ok of ["1.0.0", "2026.11.26", "1.0.0-rc.1+b7"]) assert.isTrue(isVersion(ok), ok)
    for (const bad of ["", ".", "..", "../x", "a/b", "-1", "1..2", ".hidden"])
      assert.isFalse(isVersion(bad), bad)
  })
})

describe("toPrune", () => {
  it("keeps current and previous, deletes the rest", () => {
    assert.deepStrictEqual(toPrune(["1.0.0", "1.1.0", "1.2.0", "0.9.0"], ["1.2.0", "1.1.0"]), [
      "0.9.0",
      "1.0.0"
    ])
    assert.deepStrictEqual(toPrune(["1.0.0"], ["1.0.0", undefined]), [])
  })
})
