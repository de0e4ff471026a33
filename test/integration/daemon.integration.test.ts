/**
 * `bin/archy daemon` end to end, on real podman: the fixture catalog (test/fixtures/apps, its host
 * ports moved to free ones) brought up by the daemon alone; a container killed (`kill -9` of its
 * process from the host), removed (`podman rm -f`) or stopped (`podman stop`) is running again
 * within 15 s with no manual step and before the daemon's 30 s timer pass was due, so the
 * podman-events path healed it; the JSON-RPC API with its token (uninstall, install, status, health, reconcile, a missing or
 * wrong token, malformed JSON); and the selection surviving a restart (SIGTERM exits 0).
 *
 * podman is a private `podman system service` on its own store: the daemon removes every
 * container with our labels whose app its catalog does not name, so on the shared store it would
 * remove other runs' containers.
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import * as Effect from "effect/Effect"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { call, type DaemonConnection, findDaemon } from "../../packages/cli/src/DaemonClient.ts"
import { fixtureAppsDir, fixtureContainers } from "../fixtures/fixtures.ts"
import { busyboxV1 } from "../images/images.ts"
import { missing } from "./support/Prerequisites.ts"
import {
  copyCatalog,
  type DaemonProcess,
  freePort,
  httpRequest,
  makePrivatePodman,
  type PrivatePodman,
  privatePodmanMissing,
  startDaemon
} from "./support/PrivatePodman.ts"

/** The daemon's timer in this suite: anything healed well within it was healed by an event. */
const intervalSeconds = 30
/** How long a heal may take. */
const healBoundMs = 15_000
/** The fixture containers with a health check. */
const healthChecked = ["archy-fx-bitcoind", "archy-fx-lnd", "archy-fx-ui"]
const slow = { timeout: 120_000 }

const skip = missing("the archy daemon suite", privatePodmanMissing([busyboxV1]))

interface Inspected {
  readonly status: string
  readonly id: string
  readonly startedAt: string
  readonly pid: number
}

interface ContainerView {
  readonly name: string
  readonly state: string
  readonly health?: string
}
interface PackageStatus {
  readonly id: string
  readonly installed: boolean
  readonly containers: ReadonlyArray<ContainerView>
}
interface PackageView {
  readonly id: string
  readonly installed: boolean
}
interface RpcBody {
  readonly jsonrpc?: string
  readonly id?: unknown
  readonly result?: unknown
  readonly error?: { readonly code: number; readonly message: string }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe.skipIf(skip !== undefined)("archy daemon against real podman (private store)", () => {
  let podman: PrivatePodman | undefined
  const daemons: Array<DaemonProcess> = []
  let daemon: DaemonProcess | undefined
  let appsDir = ""
  let stateDir = ""
  /** When the current daemon first answered /healthz; its timer passes are due every interval after. */
  let readyAt = 0

  const inspect = async (name: string): Promise<Inspected | undefined> => {
    const r = await podman!.cliAsync(
      [
        "container",
        "inspect",
        "--format",
        "{{.State.Status}} {{.Id}} {{.State.Pid}} {{.State.StartedAt}}",
        name
      ],
      30_000
    )
    if (r.status !== 0) return undefined
    const [status, id, pid, ...started] = r.stdout.trim().split(" ")
    return { status: status!, id: id!, pid: Number(pid), startedAt: started.join(" ") }
  }

  /** Polls `podman inspect` until `ok` holds for every name; the time it took, or undefined. */
  const waitFor = async (
    names: ReadonlyArray<string>,
    ok: (name: string, c: Inspected | undefined) => boolean,
    timeoutMs: number,
    since = performance.now()
  ): Promise<number | undefined> => {
    const deadline = since + timeoutMs
    while (performance.now() < deadline) {
      const seen = await Promise.all(names.map(inspect))
      if (names.every((n, k) => ok(n, seen[k]))) return performance.now() - since
      await sleep(100)
    }
    return undefined
  }

  const allRunning = (timeoutMs: number, names: ReadonlyArray<string> = fixtureContainers) =>
    waitFor(names, (_, c) => c?.status === "running", timeoutMs)

  const log = () => `\n--- daemon output ---\n${daemon?.output().slice(-6_000) ?? ""}`

  const start = async (): Promise<DaemonProcess> => {
    const d = await startDaemon({
      appsDir,
      stateDir,
      socketPath: podman!.socketPath,
      port: await freePort(),
      interval: intervalSeconds
    })
    readyAt = performance.now()
    daemons.push(d)
    daemon = d
    return d
  }

  const connection = async (): Promise<DaemonConnection> => {
    const found = await Effect.runPromise(findDaemon(stateDir, daemon!.port))
    assert.isDefined(found, `findDaemon did not find the daemon on port ${daemon!.port}`)
    return found!
  }

  const rpc = async <A>(method: string, params?: Record<string, unknown>): Promise<A> =>
    (await Effect.runPromise(call(method, params, await connection()))) as A

  /** package.status once every health-checked container is healthy, or after 20 s. */
  const healthyStatus = async (): Promise<ReadonlyArray<PackageStatus>> => {
    const deadline = Date.now() + 20_000
    for (;;) {
      const status = await rpc<ReadonlyArray<PackageStatus>>("package.status")
      const healthy = status
        .flatMap((a) => a.containers)
        .filter((c) => healthChecked.includes(c.name))
        .every((c) => c.health === "healthy")
      if (healthy || Date.now() > deadline) return status
      await sleep(250)
    }
  }

  /**
   * Breaks `name` and waits until it runs again, healed by the daemon alone. A timer pass runs
   * every interval from about `readyAt`: a trial starts only when the next one is more than the
   * heal bound away, and must be healed before it, so the heal came from podman's events.
   */
  const heal = async (
    name: string,
    breakIt: (before: Inspected) => Promise<void>,
    healed: (before: Inspected, now: Inspected) => boolean
  ) => {
    const period = intervalSeconds * 1000
    const sinceTick = (performance.now() - readyAt) % period
    if (period - sinceTick < healBoundMs + 2_000) await sleep(period - sinceTick + 1_000)
    const nextTick = readyAt + Math.ceil((performance.now() - readyAt) / period) * period
    const before = await inspect(name)
    assert.strictEqual(before?.status, "running", name)
    const t0 = performance.now()
    await breakIt(before!)
    const took = await waitFor(
      [name],
      (_, c) => c?.status === "running" && healed(before!, c),
      healBoundMs,
      t0
    )
    assert.isDefined(took, `${name} was not running again within ${healBoundMs} ms${log()}`)
    assert.isBelow(
      t0 + took!,
      nextTick - 500,
      `${name} was healed only once a timer pass was due, so not shown to be healed by events`
    )
    return before!
  }

  beforeAll(async () => {
    podman = makePrivatePodman({ prefix: "archy-daemon-it-" })
    podman.copyImages([busyboxV1])
    podman.watchNetwork("archipelago")
    await podman.startService()
    appsDir = join(podman.dir, "apps")
    await copyCatalog(fixtureAppsDir, appsDir)
    stateDir = join(podman.dir, "state")
    mkdirSync(stateDir)
    await start()
    const took = await allRunning(60_000)
    assert.isDefined(took, `the fixture containers were not all running within 60 s${log()}`)
    // Health verdicts arriving after the boot ask for passes; the heals below must not meet one.
    await healthyStatus()
    await sleep(2_000)
  }, 120_000)

  afterAll(async () => {
    for (const d of daemons) {
      d.kill()
      await d.exit
    }
    const problems = (await podman?.dispose()) ?? []
    if (problems.length > 0) console.warn(`daemon suite cleanup:\n  ${problems.join("\n  ")}`)
  }, 120_000)

  it("answers /healthz without a token and reports podman reachable", slow, async () => {
    const healthz = await httpRequest(daemon!.port, "GET", "/healthz")
    assert.strictEqual(healthz.status, 200)
    assert.strictEqual(healthz.text.trim(), "ok")
    const health = await rpc<{ podman: string; lastPass?: { at: string }; catalogIssues: number }>(
      "system.health"
    )
    assert.strictEqual(health.podman, "reachable")
    assert.isDefined(health.lastPass, "no pass reported yet")
    assert.strictEqual(health.catalogIssues, 0)
  })

  it("heals a container whose process was killed (kill -9 from the host)", slow, async () => {
    const name = "archy-fx-bitcoind"
    const before = await heal(
      name,
      async (c) => {
        assert.isAbove(c.pid, 0)
        process.kill(c.pid, "SIGKILL")
      },
      (before, now) => now.startedAt !== before.startedAt
    )
    assert.strictEqual(
      (await inspect(name))?.id,
      before.id,
      "a kill is healed by a start, not a new container"
    )
  })

  it("heals a container that was removed (podman rm -f), as a new container", slow, async () => {
    await heal(
      "archy-fx-worker",
      async () => {
        const rm = await podman!.cliAsync(["rm", "-f", "-t", "0", "archy-fx-worker"])
        assert.strictEqual(rm.status, 0, rm.stderr)
      },
      (before, now) => now.id !== before.id
    )
  })

  it("heals a container that was stopped (podman stop)", slow, async () => {
    await heal(
      "archy-fx-lnd",
      async () => {
        const stop = await podman!.cliAsync(["stop", "-t", "0", "archy-fx-lnd"])
        assert.strictEqual(stop.status, 0, stop.stderr)
      },
      (before, now) => now.startedAt !== before.startedAt
    )
  })

  it("package.status shows every installed app's containers with state and health", slow, async () => {
    // Health verdicts come back within a few seconds of the heals above.
    const status = await healthyStatus()
    assert.deepStrictEqual(
      status.map((a) => a.id),
      ["fx-bitcoind", "fx-lnd", "fx-ui", "fx-worker"]
    )
    const containers = status.flatMap((a) => a.containers)
    assert.sameMembers(
      containers.map((c) => c.name),
      [...fixtureContainers]
    )
    for (const c of containers) assert.strictEqual(c.state, "running", JSON.stringify(c))
    for (const name of healthChecked)
      assert.strictEqual(containers.find((c) => c.name === name)?.health, "healthy", name)
    for (const name of fixtureContainers.filter((n) => !healthChecked.includes(n)))
      assert.isUndefined(containers.find((c) => c.name === name)?.health, `${name} has no health check`)
  })

  it("refuses a missing or wrong token with HTTP 401 and -32001", slow, async () => {
    const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "package.list" })
    for (const headers of [{}, { Authorization: "Bearer not-the-token" }, { Authorization: "Basic xyz" }]) {
      const r = await daemon!.post(body, headers)
      assert.strictEqual(r.status, 401, JSON.stringify(headers))
      assert.strictEqual((r.json as RpcBody).error?.code, -32001, r.text)
      assert.notProperty(r.json as object, "result")
    }
  })

  it("answers malformed JSON with -32700 and keeps serving", slow, async () => {
    const r = await daemon!.post('{"jsonrpc": "2.0", "id": 1, "method": "package.list"', {
      Authorization: `Bearer ${daemon!.token()}`
    })
    assert.strictEqual(r.status, 200)
    const body = r.json as RpcBody
    assert.strictEqual(body.jsonrpc, "2.0")
    assert.strictEqual(body.id, null)
    assert.strictEqual(body.error?.code, -32700, r.text)
    const next = await daemon!.rpc("package.list")
    assert.strictEqual(next.status, 200)
    // Every app of the catalog, installed or not.
    assert.lengthOf(
      (next.json as RpcBody).result as ReadonlyArray<unknown>,
      readdirSync(appsDir).length,
      next.text
    )
  })

  it("package.uninstall removes fx-ui, and it stays gone after a reconcile", slow, async () => {
    const actions = await rpc<ReadonlyArray<{ kind: string; target: string; outcome?: string }>>(
      "package.uninstall",
      { id: "fx-ui" }
    )
    assert.isTrue(
      actions.some((a) => a.target === "container:archy-fx-ui" && a.outcome === "done"),
      JSON.stringify(actions)
    )
    assert.isUndefined(await inspect("archy-fx-ui"), "archy-fx-ui still exists after the uninstall")
    await rpc("system.reconcile")
    await sleep(1_000)
    assert.isUndefined(await inspect("archy-fx-ui"), "archy-fx-ui came back after a reconcile")
    const list = await rpc<ReadonlyArray<PackageView>>("package.list")
    assert.isFalse(list.find((p) => p.id === "fx-ui")?.installed)
    const others = fixtureContainers.filter((n) => n !== "archy-fx-ui")
    assert.isDefined(
      await allRunning(5_000, others),
      `the other apps' containers are not all running${log()}`
    )
  })

  it(
    "the uninstall survives a restart: SIGTERM exits 0, the next daemon keeps fx-ui uninstalled",
    slow,
    async () => {
      const old = daemon!
      const token = old.token()
      const bitcoind = await inspect("archy-fx-bitcoind")
      const t0 = performance.now()
      process.kill(old.pid, "SIGTERM")
      const exit = await Promise.race([old.exit, sleep(30_000).then(() => undefined)])
      assert.isDefined(exit, `the daemon did not exit within 30 s of SIGTERM${log()}`)
      assert.deepStrictEqual(
        exit,
        { code: 0, signal: null },
        `exit after ${Math.round(performance.now() - t0)} ms`
      )
      const selection = JSON.parse(readFileSync(join(stateDir, "selection.json"), "utf8")) as {
        installed: ReadonlyArray<string>
      }
      assert.notInclude(selection.installed, "fx-ui")

      await start()
      assert.strictEqual(daemon!.token(), token, "the API token changed across the restart")
      // A pass after the boot pass: whatever the boot pass did is done by then.
      await rpc("system.reconcile")
      await sleep(1_000)
      assert.isUndefined(await inspect("archy-fx-ui"), "the restarted daemon brought archy-fx-ui back")
      const list = await rpc<ReadonlyArray<PackageView>>("package.list")
      assert.isFalse(list.find((p) => p.id === "fx-ui")?.installed)
      const others = fixtureContainers.filter((n) => n !== "archy-fx-ui")
      assert.isDefined(
        await allRunning(5_000, others),
        `the other apps' containers are not all running${log()}`
      )
      assert.strictEqual(
        (await inspect("archy-fx-bitcoind"))?.id,
        bitcoind?.id,
        "a daemon restart should leave running containers alone"
      )
    }
  )

  it("package.install brings fx-ui back", slow, async () => {
    await rpc("package.install", { id: "fx-ui" })
    assert.isDefined(await allRunning(30_000), `not every fixture container is running${log()}`)
    const [ui] = await rpc<ReadonlyArray<PackageStatus>>("package.status", { id: "fx-ui" })
    assert.isTrue(ui?.installed)
    assert.strictEqual(ui?.containers.find((c) => c.name === "archy-fx-ui")?.state, "running")
  })
})
