import { readdirSync, readFileSync } from "node:fs"
import { catalogFromSources } from "@archy/core/Catalog"
import * as Desired from "@archy/core/Desired"
import { labels, type ObservedContainer } from "@archy/core/Observed"
import { assert, describe, it } from "@effect/vitest"
import { type CrashState, delayMs, observeCrashes, toBackoff } from "../src/CrashBackoff.ts"

const fixtures = new URL("../../../test/fixtures/apps/", import.meta.url).pathname
const catalog = catalogFromSources(
  readdirSync(fixtures).map((dirName) => ({
    file: `${fixtures}${dirName}/manifest.yml`,
    dir: `${fixtures}${dirName}`,
    dirName,
    text: readFileSync(`${fixtures}${dirName}/manifest.yml`, "utf8")
  }))
)
const desired = Desired.make({
  catalog,
  node: Desired.defaultNodeConfig,
  selection: Desired.defaultSelection(catalog),
  secrets: new Map()
})
// archy-fx-worker: backoffInitial 1s, backoffMax 8s, resetAfter 30s.
const worker = (
  state: ObservedContainer["state"],
  startedAtMs: number,
  exitCode = 137
): ObservedContainer => ({
  id: "w",
  name: "archy-fx-worker",
  image: "localhost/archy-test/busybox:1",
  labels: { [labels.app]: "fx-worker" },
  state,
  startedAtMs,
  exitCode
})

describe("crash backoff", () => {
  it("waits 0, then initial, doubling up to the cap", () => {
    const policy = { initialMs: 1_000, maxMs: 8_000, resetAfterMs: 30_000 }
    assert.deepStrictEqual(
      [1, 2, 3, 4, 5, 6].map((n) => delayMs(n, policy)),
      [0, 1_000, 2_000, 4_000, 8_000, 8_000]
    )
  })

  it("heals the first crash at once, backs off the next ones, and says why", () => {
    let s: CrashState = new Map()
    s = observeCrashes(s, desired, [worker("exited", 1_000)], 2_000)
    assert.deepStrictEqual(toBackoff(s, 2_000), [])
    // Restarted at 2 s, died again at 3 s: the second crash in a row waits 1 s.
    s = observeCrashes(s, desired, [worker("exited", 2_000, 1)], 3_000)
    assert.deepStrictEqual(toBackoff(s, 3_000), [
      { container: "archy-fx-worker", untilMs: 4_000, reason: "2 crashes in a row, last exit code 1" }
    ])
    // The same exit seen again is not counted again.
    s = observeCrashes(s, desired, [worker("exited", 2_000, 1)], 3_500)
    assert.strictEqual(s.get("archy-fx-worker")!.crashes, 2)
    s = observeCrashes(s, desired, [worker("exited", 4_000, 1)], 5_000)
    assert.strictEqual(toBackoff(s, 5_000)[0]!.untilMs, 7_000)
  })

  it("forgets the history after a stable run; a removal or a user stop is no crash", () => {
    let s: CrashState = observeCrashes(new Map(), desired, [worker("exited", 1_000)], 2_000)
    s = observeCrashes(s, desired, [worker("exited", 2_000)], 3_000)
    s = observeCrashes(s, desired, [worker("running", 4_000)], 10_000)
    assert.strictEqual(s.get("archy-fx-worker")!.crashes, 2)
    s = observeCrashes(s, desired, [worker("running", 4_000)], 34_000)
    assert.isFalse(s.has("archy-fx-worker"))
    s = observeCrashes(s, desired, [], 40_000)
    assert.isFalse(s.has("archy-fx-worker"))
    const stopped = Desired.make({
      catalog,
      node: Desired.defaultNodeConfig,
      selection: { installed: Desired.defaultSelection(catalog).installed, stopped: ["fx-worker"] },
      secrets: new Map()
    })
    s = observeCrashes(s, stopped, [worker("exited", 40_000)], 41_000)
    assert.isFalse(s.has("archy-fx-worker"))
  })
})
