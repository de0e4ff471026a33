/**
 * The install dir on real files: where `current` points, the atomic switch, the records, the
 * start counter (countBoot) and what a corrupt record does.
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Effect from "effect/Effect"
import { afterEach, assert, beforeEach, describe, it } from "vitest"
import * as Install from "../src/Install.ts"
import { countBoot } from "../src/Verifier.ts"

const run = <A, E>(effect: Effect.Effect<A, E, NodeServices.NodeServices>): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.provide(NodeServices.layer)))

let dir = ""
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "archy-install-"))
  for (const v of ["1.0.0", "2.0.0"]) mkdirSync(join(dir, "releases", v), { recursive: true })
  symlinkSync("releases/1.0.0", join(dir, "current"))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

describe("Install", () => {
  it("reads current, switches it by renaming a new link over it, and leaves no temporary link", async () => {
    const install = await run(Install.make(dir))
    assert.strictEqual(await run(install.current), "1.0.0")
    await run(install.switchTo("2.0.0"))
    assert.strictEqual(readlinkSync(join(dir, "current")), "releases/2.0.0")
    assert.strictEqual(await run(install.current), "2.0.0")
    assert.deepStrictEqual(readdirSync(dir).sort(), ["current", "releases"])
    assert.deepStrictEqual(await run(install.releases), ["1.0.0", "2.0.0"])
  })

  it("refuses a current that points outside releases/", async () => {
    rmSync(join(dir, "current"))
    symlinkSync("/etc", join(dir, "current"))
    const install = await run(Install.make(dir))
    const e = await run(Effect.flip(install.current))
    assert.match(e.message, /current: points at \/etc, not releases\/<version>/)
  })

  it("a corrupt marker is an error naming the file, never read as no update", async () => {
    writeFileSync(join(dir, "update-pending.json"), "{ not json")
    const install = await run(Install.make(dir))
    const e = await run(Effect.flip(install.marker))
    assert.include(e.message, join(dir, "update-pending.json"))
    assert.match(e.message, /is not valid/)
  })
})

describe("countBoot (the unit's ExecStartPre)", () => {
  const marker = { from: "1.0.0", to: "2.0.0", at: "2026-11-26T08:00:00.000Z", boots: 0 }

  it("counts each start durably, and rolls back before the fourth start of the new release", async () => {
    const install = await run(Install.make(dir))
    await run(install.switchTo("2.0.0"))
    await run(install.writeMarker(marker))
    for (const boots of [1, 2, 3]) {
      const d = await run(countBoot(install, 3))
      assert.strictEqual(d._tag, "Verify")
      assert.strictEqual(JSON.parse(readFileSync(join(dir, "update-pending.json"), "utf8")).boots, boots)
    }
    const d = await run(countBoot(install, 3))
    assert.strictEqual(d._tag, "RollBack")
    assert.strictEqual(readlinkSync(join(dir, "current")), "releases/1.0.0")
    const m = JSON.parse(readFileSync(join(dir, "update-pending.json"), "utf8"))
    assert.strictEqual(m.boots, 4)
    assert.strictEqual(m.rollback.probe, "boot")
    // The previous release's daemon, next, only has to record it.
    assert.strictEqual((await run(countBoot(install, 3)))._tag, "FinishRollback")
  })

  it("does nothing without a marker", async () => {
    const install = await run(Install.make(dir))
    assert.strictEqual((await run(countBoot(install, 3)))._tag, "NoUpdate")
    assert.deepStrictEqual(readdirSync(dir).sort(), ["current", "releases"])
  })
})
