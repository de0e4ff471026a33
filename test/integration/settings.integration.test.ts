/**
 * Typed settings end to end on real podman: `bin/archy daemon` on a private podman store runs the
 * fixture catalog; `bin/archy configure` (through the daemon) and `package.configure` change
 * fx-bitcoind's settings. A setting read by bitcoin.conf alone rewrites that file and restarts
 * exactly archy-fx-bitcoind; the network, which fx-lnd's lnd.conf follows through
 * `${bitcoind.settings.network}`, rewrites both files and restarts exactly their two consumers.
 * Every other container keeps its id and start time. A refused value changes nothing.
 *
 * podman is a private `podman system service` on its own store: the daemon removes every
 * container with our labels whose app its catalog does not name.
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { fixtureAppsDir, fixtureContainers } from "../fixtures/fixtures.ts"
import { busyboxV1 } from "../images/images.ts"
import { missing } from "./support/Prerequisites.ts"
import {
  copyCatalog,
  type DaemonProcess,
  freePort,
  makePrivatePodman,
  type PrivatePodman,
  privatePodmanMissing,
  startDaemon
} from "./support/PrivatePodman.ts"

const slow = { timeout: 180_000 }
const repoRoot = new URL("../../", import.meta.url).pathname

const skip = missing("the settings suite", privatePodmanMissing([busyboxV1]))

interface Inspected {
  readonly status: string
  readonly id: string
  readonly startedAt: string
}

interface ConfigureResult {
  readonly changed: ReadonlyArray<string>
  readonly actions: ReadonlyArray<{
    readonly kind: string
    readonly target: string
    readonly outcome?: string
  }>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe.skipIf(skip !== undefined)("archy configure against real podman (private store)", () => {
  let podman: PrivatePodman | undefined
  let daemon: DaemonProcess | undefined
  let appsDir = ""
  let stateDir = ""
  let bitcoinConf = ""
  let lndConf = ""

  const inspect = async (name: string): Promise<Inspected | undefined> => {
    const r = await podman!.cliAsync(
      ["container", "inspect", "--format", "{{.State.Status}} {{.Id}} {{.State.StartedAt}}", name],
      30_000
    )
    if (r.status !== 0) return undefined
    const [status, id, ...started] = r.stdout.trim().split(" ")
    return { status: status!, id: id!, startedAt: started.join(" ") }
  }
  const inspectAll = async () =>
    Object.fromEntries(await Promise.all(fixtureContainers.map(async (n) => [n, await inspect(n)] as const)))

  const log = () => `\n--- daemon output ---\n${daemon?.output().slice(-6_000) ?? ""}`

  /** `bin/archy configure ...` against this node's daemon. */
  const archy = (args: ReadonlyArray<string>) => {
    const r = spawnSync(
      join(repoRoot, "bin/archy"),
      ["configure", ...args, "--apps", appsDir, "--state-dir", stateDir, "--port", String(daemon!.port)],
      { cwd: repoRoot, encoding: "utf8", timeout: 150_000 }
    )
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  }

  /** Waits until every fixture container runs and no pass changes anything any more. */
  const settled = async () => {
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      const all = await inspectAll()
      if (fixtureContainers.every((n) => all[n]?.status === "running")) {
        const pass = await daemon!.rpc("system.reconcile")
        const views = (pass.json as { result?: ReadonlyArray<unknown> }).result
        if (views !== undefined && views.length === 0) return
      }
      await sleep(500)
    }
    assert.fail(`the fixture node did not settle within 60 s${log()}`)
  }

  /** Asserts that exactly `restarted` were restarted in place (same id, new start) and nothing else moved. */
  const onlyRestarted = (
    before: Record<string, Inspected | undefined>,
    after: Record<string, Inspected | undefined>,
    restarted: ReadonlyArray<string>
  ) => {
    for (const name of fixtureContainers) {
      const b = before[name]!
      const a = after[name]
      assert.strictEqual(a?.status, "running", `${name} runs${log()}`)
      assert.strictEqual(a!.id, b.id, `${name} kept its container (restarted, not recreated)`)
      if (restarted.includes(name)) assert.notStrictEqual(a!.startedAt, b.startedAt, `${name} was restarted`)
      else assert.strictEqual(a!.startedAt, b.startedAt, `${name} must not have been restarted`)
    }
  }

  beforeAll(async () => {
    podman = makePrivatePodman({ prefix: "archy-set-it-" })
    podman.copyImages([busyboxV1])
    podman.watchNetwork("archipelago")
    await podman.startService()
    appsDir = join(podman.dir, "apps")
    await copyCatalog(fixtureAppsDir, appsDir)
    stateDir = join(podman.dir, "state")
    mkdirSync(stateDir)
    bitcoinConf = join(stateDir, "apps/fx-bitcoind/data/bitcoin.conf")
    lndConf = join(stateDir, "apps/fx-lnd/data/lnd.conf")
    daemon = await startDaemon({
      appsDir,
      stateDir,
      socketPath: podman.socketPath,
      port: await freePort(),
      interval: 30
    })
    await settled()
  }, 150_000)

  afterAll(async () => {
    daemon?.kill()
    await daemon?.exit
    const problems = (await podman?.dispose()) ?? []
    if (problems.length > 0) console.warn(`settings suite cleanup:\n  ${problems.join("\n  ")}`)
  }, 120_000)

  it("lists the settings with their values, defaults and meanings", slow, () => {
    const r = archy(["fx-bitcoind"])
    assert.strictEqual(r.status, 0, r.stderr)
    assert.match(r.stdout, /^network {2}regtest \(default\)$/m)
    assert.match(r.stdout, /^dbcache {2}4 \(default\)$/m)
    assert.match(r.stdout, /accepts an integer from 4 to 1024 \(MiB\)/)
  })

  it(
    "a setting only bitcoin.conf reads: the file is rewritten and only archy-fx-bitcoind restarts",
    slow,
    async () => {
      const before = await inspectAll()
      const lndBefore = statSync(lndConf)
      const r = archy(["fx-bitcoind", "dbcache=64", "--json"])
      assert.strictEqual(r.status, 0, `${r.stderr}${log()}`)
      const result = JSON.parse(r.stdout) as ConfigureResult
      assert.deepStrictEqual(result.changed, ["dbcache"])
      const done = result.actions.filter((a) => a.outcome === "done").map((a) => `${a.kind} ${a.target}`)
      assert.deepStrictEqual(done, [`write-file file:${bitcoinConf}`, "restart container:archy-fx-bitcoind"])
      assert.include(readFileSync(bitcoinConf, "utf8"), "\ndbcache=64\n")
      assert.strictEqual(statSync(lndConf).mtimeMs, lndBefore.mtimeMs, "lnd.conf was not rewritten")
      onlyRestarted(before, await inspectAll(), ["archy-fx-bitcoind"])
      assert.deepStrictEqual(JSON.parse(readFileSync(join(stateDir, "settings.json"), "utf8")), {
        "fx-bitcoind": { dbcache: 64 }
      })
      await settled()
    }
  )

  it("the network reaches fx-lnd's lnd.conf: exactly the two consumers restart", slow, async () => {
    const before = await inspectAll()
    const answer = await daemon!.rpc("package.configure", {
      id: "fx-bitcoind",
      settings: { network: "signet" }
    })
    const result = (answer.json as { result?: ConfigureResult }).result
    assert.deepStrictEqual(result?.changed, ["network"], `${answer.text}${log()}`)
    assert.include(readFileSync(bitcoinConf, "utf8"), "\n[signet]\n")
    assert.include(readFileSync(lndConf, "utf8"), "\nbitcoin.signet=1\n")
    onlyRestarted(before, await inspectAll(), ["archy-fx-bitcoind", "archy-fx-lnd"])
    await settled()
  })

  it("a refused value says why and changes nothing", slow, async () => {
    const before = await inspectAll()
    const conf = readFileSync(bitcoinConf, "utf8")
    const settings = readFileSync(join(stateDir, "settings.json"), "utf8")
    const r = archy(["fx-bitcoind", "dbcache=2", "network=mainnet"])
    assert.strictEqual(r.status, 1)
    assert.include(r.stderr, "dbcache: expected an integer from 4 to 1024 (MiB), got 2")
    assert.include(r.stderr, 'network: expected one of regtest, signet, got "mainnet"')
    assert.strictEqual(readFileSync(bitcoinConf, "utf8"), conf)
    assert.strictEqual(readFileSync(join(stateDir, "settings.json"), "utf8"), settings)
    onlyRestarted(before, await inspectAll(), [])
  })
})
