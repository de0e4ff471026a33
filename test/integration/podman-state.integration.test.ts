/**
 * FM6 on real podman: with `archy daemon` running the fixture catalog on a private podman store,
 * that store's `libpod/bolt_state.db` is deleted while the containers run. podman then lists
 * nothing while the old containers still run and hold their names. The daemon must notice
 * (storage holds containers the DB lacks), clean the orphans and recreate every container under
 * the same name, with the images still present, the app data (a marker file in each app's data
 * dir) intact, and no `podman system reset`. `archy doctor` shows the orphans while they exist.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { fixtureAppsDir, fixtureContainers } from "../fixtures/fixtures.ts"
import { busyboxV1 } from "../images/images.ts"
import { missing, run } from "./support/Prerequisites.ts"
import {
  copyCatalog,
  type DaemonProcess,
  freePort,
  makePrivatePodman,
  type PrivatePodman,
  privatePodmanMissing,
  startDaemon
} from "./support/PrivatePodman.ts"

const skip = missing("the podman state (FM6) suite", privatePodmanMissing([busyboxV1]))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const repoRoot = new URL("../../", import.meta.url).pathname

describe.skipIf(skip !== undefined)("FM6: podman's state DB lost under a running daemon", () => {
  let podman: PrivatePodman | undefined
  let daemon: DaemonProcess | undefined
  let appsDir = ""
  let stateDir = ""

  const running = async (): Promise<Map<string, string>> => {
    const r = await podman!.cliAsync(["ps", "-a", "--format", "json"], 30_000)
    const out = new Map<string, string>()
    const list = JSON.parse(r.stdout || "[]") as Array<{ Names: Array<string>; State: string; Id: string }>
    for (const c of list) if (c.State === "running") out.set(c.Names[0]!, c.Id)
    return out
  }

  const waitAllRunning = async (timeoutMs: number): Promise<Map<string, string> | undefined> => {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const now = await running()
      if (fixtureContainers.every((n) => now.has(n))) return now
      await sleep(250)
    }
    return undefined
  }

  const log = () => `\n--- daemon output ---\n${daemon?.output().slice(-8_000) ?? ""}`

  const markers = () =>
    ["fx-bitcoind", "fx-lnd", "fx-ui", "fx-worker"].map((app) => join(stateDir, "apps", app, "fm6-marker"))

  beforeAll(async () => {
    podman = makePrivatePodman({ prefix: "archy-fm6-it-" })
    podman.copyImages([busyboxV1])
    podman.watchNetwork("archipelago")
    await podman.startService()
    appsDir = join(podman.dir, "apps")
    await copyCatalog(fixtureAppsDir, appsDir)
    stateDir = join(podman.dir, "state")
    mkdirSync(stateDir)
    daemon = await startDaemon({
      appsDir,
      stateDir,
      socketPath: podman.socketPath,
      port: await freePort(),
      interval: 5
    })
    assert.isDefined(await waitAllRunning(90_000), `the fixture apps did not all run within 90 s${log()}`)
    for (const m of markers()) {
      mkdirSync(join(m, ".."), { recursive: true })
      writeFileSync(m, `marker ${m}\n`)
    }
  }, 180_000)

  afterAll(async () => {
    daemon?.kill()
    if (daemon !== undefined) await daemon.exit
    // Should a heal have failed, orphans still run: clean them the way the daemon would have.
    const left = podman?.cli(["ps", "-a", "--external", "-q", "--no-trunc"]).stdout.trim().split("\n") ?? []
    for (const id of left.filter((s) => /^[0-9a-f]{64}$/.test(s))) {
      await run("runc", ["delete", "--force", id])
      podman?.cli(["rm", "-f", "--storage", id])
    }
    const problems = (await podman?.dispose()) ?? []
    if (problems.length > 0) console.warn(`FM6 suite cleanup:\n  ${problems.join("\n  ")}`)
  }, 120_000)

  it("heals: every app runs again under its name, images and app data intact", {
    timeout: 180_000
  }, async () => {
    const before = await running()
    const images = podman!.cliOk(["images", "--format", "{{.ID}}"]).trim().split("\n").sort()
    const db = join(podman!.dir, "store/root/libpod/bolt_state.db")
    assert.isTrue(existsSync(db), `no state DB at ${db}`)

    rmSync(db)
    // podman's own view now: nothing listed, the old containers in storage only.
    const listed = podman!.cliOk(["ps", "-a", "-q"]).trim()
    const external = podman!.cliOk(["ps", "-a", "--external", "--format", "{{.Names}} {{.State}}"])
    for (const name of fixtureContainers)
      assert.include(external, name, "the old containers should still be in storage")

    // doctor shows it (read-only) while the orphans are there, unless the daemon already healed.
    const doctor = await run(
      join(repoRoot, "bin/archy"),
      ["doctor", "--json", "--apps", appsDir, "--state-dir", stateDir, "--socket", podman!.socketPath],
      { timeoutMs: 60_000 }
    )
    const findings = (
      JSON.parse(doctor.stdout) as { findings: Array<{ check: string; ok: boolean; message: string }> }
    ).findings
    const state = findings.find((f) => f.check === "podman state")
    assert.isDefined(state, `doctor printed no podman state finding:\n${doctor.stdout}\n${doctor.stderr}`)
    // Unless the daemon's timer pass cleaned them first, doctor names the orphans.
    if (!/CleanOrphan/.test(daemon!.output())) {
      assert.isFalse(state!.ok, state!.message)
      assert.include(state!.message, "archy-fx-bitcoind")
      assert.strictEqual(doctor.code, 1)
    }

    const t0 = performance.now()
    const after = await waitAllRunning(120_000)
    assert.isDefined(after, `the apps did not all run again within 120 s${log()}`)
    const tookMs = performance.now() - t0
    console.log(
      `FM6 healed in ${(tookMs / 1000).toFixed(1)} s (state DB deleted, ${listed === "" ? "podman listed nothing" : "podman still listed some"})`
    )
    for (const name of fixtureContainers)
      assert.notStrictEqual(after!.get(name), before.get(name), `${name} should be a new container`)

    // No orphan left behind in storage, images untouched, app data intact.
    const leftovers = podman!
      .cliOk(["ps", "-a", "--external", "--format", "{{.Names}} {{.State}}"])
      .split("\n")
      .filter((l) => / storage$/i.test(l))
    assert.deepStrictEqual(leftovers, [], "orphans left in storage")
    assert.deepStrictEqual(
      podman!.cliOk(["images", "--format", "{{.ID}}"]).trim().split("\n").sort(),
      images,
      "images changed"
    )
    for (const m of markers()) assert.strictEqual(readFileSync(m, "utf8"), `marker ${m}\n`, m)
    const output = daemon!.output()
    assert.match(output, /CleanOrphan container:archy-fx-bitcoind: done/, log())
    assert.match(output, /cleaned orphan archy-fx-bitcoind: [^\n]*removed its storage/, log())
    assert.notMatch(output, /system reset/)
    assert.isTrue(daemon!.running(), "the daemon must keep running")
  })

  it("heals a container whose DB entry and storage are both gone while the runtime still runs it", {
    timeout: 180_000
  }, async () => {
    const before = await running()
    const target = "archy-fx-worker-queue"
    const id = before.get(target)!
    rmSync(join(podman!.dir, "store/root/libpod/bolt_state.db"))
    // Storage removed by hand without stopping it: only runc and conmon still know it.
    podman!.cliOk(["rm", "-f", "--storage", id])
    const external = podman!.cliOk(["ps", "-a", "--external", "--no-trunc", "-q"])
    assert.notInclude(external, id, "podman should not know the container any more")
    const state = await run("runc", ["state", id])
    assert.strictEqual(state.code, 0, `runc should still run ${id}: ${state.stderr}`)

    const after = await waitAllRunning(120_000)
    assert.isDefined(after, `the apps did not all run again within 120 s${log()}`)
    assert.notStrictEqual(after!.get(target), id)
    const gone = await run("runc", ["state", id])
    assert.notStrictEqual(gone.code, 0, `runc still runs the old ${target}`)
    assert.match(
      daemon!.output(),
      new RegExp(`cleaned orphan ${target}: [^\\n]*killed and deleted it`),
      log()
    )
    for (const m of markers()) assert.strictEqual(readFileSync(m, "utf8"), `marker ${m}\n`, m)
  })
})
