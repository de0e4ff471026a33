/**
 * Runs the chaos matrix (test/chaos/run) against real podman and prints its table: every fault
 * must heal with no data lost, or this fails with the runner's output.
 */
import { join } from "node:path"
import { assert, describe, it } from "vitest"
import { busyboxV1 } from "../images/images.ts"
import { missing, run } from "../integration/support/Prerequisites.ts"
import { privatePodmanMissing } from "../integration/support/PrivatePodman.ts"

const repoRoot = new URL("../../", import.meta.url).pathname
const skip = missing("the chaos matrix", privatePodmanMissing([busyboxV1]))

describe.skipIf(skip !== undefined)("the chaos matrix on real podman", () => {
  it("heals every fault with no data lost", { timeout: 360_000 }, async () => {
    const r = await run(join(repoRoot, "test/chaos/run"), [], { cwd: repoRoot, timeoutMs: 340_000 })
    const table = r.stdout.slice(r.stdout.indexOf("\nscenario"))
    console.log(table.trim())
    assert.strictEqual(
      r.code,
      0,
      `test/chaos/run exited ${r.code}:\n${r.stdout.slice(-12_000)}\n${r.stderr.slice(-4_000)}`
    )
    assert.match(r.stdout, /all 10 scenarios healed, no data lost/)
  })
})
