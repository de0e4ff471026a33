/**
 * App upgrades end to end, on real podman: `archy daemon` on a private store runs the fixture app
 * fx-web (health check: `/etc/archy-test-unhealthy` must not exist), installed through the API.
 * An upgrade to a healthy image (`bin/archy upgrade`, through the daemon) commits and the
 * container runs it; `package.rollback` goes back; an upgrade to an image that never gets healthy
 * goes back by itself and says why; a reference that cannot be pulled changes nothing; a daemon
 * killed (SIGKILL) in the middle of an upgrade judges it again at its next start and rolls back.
 * A file in the app's data dir survives all of it.
 *
 * podman is a private `podman system service` on its own store: the daemon removes every
 * container with our labels whose app its catalog does not name.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { fixtureAppsDir } from "../fixtures/fixtures.ts"
import { busyboxNoShell, busyboxUnhealthy, busyboxV1, busyboxV2 } from "../images/images.ts"
import { missing, run } from "./support/Prerequisites.ts"
import {
  type DaemonProcess,
  freePort,
  makePrivatePodman,
  type PrivatePodman,
  privatePodmanMissing,
  startDaemon
} from "./support/PrivatePodman.ts"

const app = "fx-web"
const container = "archy-fx-web"
const slow = { timeout: 180_000 }
const repoRoot = new URL("../../", import.meta.url).pathname

const skip = missing(
  "the upgrade suite",
  privatePodmanMissing([busyboxV1, busyboxV2, busyboxUnhealthy, busyboxNoShell])
)

interface Change {
  readonly container: string
  readonly from: string
  readonly to: string
}
interface Outcome {
  readonly id: string
  readonly outcome: string
  readonly changes: ReadonlyArray<Change>
  readonly reason: string
  readonly actions: ReadonlyArray<{
    readonly kind: string
    readonly target: string
    readonly outcome?: string
  }>
}
interface RpcBody {
  readonly result?: unknown
  readonly error?: { readonly code: number; readonly message: string }
}
interface Record_ {
  readonly state: string
  readonly changes: ReadonlyArray<Change>
  readonly images: Readonly<Record<string, string>>
  readonly reason: string
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe.skipIf(skip !== undefined)("app upgrades against real podman (private store)", () => {
  let podman: PrivatePodman | undefined
  const daemons: Array<DaemonProcess> = []
  let daemon: DaemonProcess | undefined
  let appsDir = ""
  let stateDir = ""
  const keep = () => join(stateDir, "apps", app, "data", "keep.txt")

  const log = () => `\n--- daemon output ---\n${daemon?.output().slice(-6_000) ?? ""}`

  const start = async () => {
    daemon = await startDaemon({
      appsDir,
      stateDir,
      socketPath: podman!.socketPath,
      port: await freePort(),
      interval: 30
    })
    daemons.push(daemon)
    return daemon
  }

  const rpc = async (method: string, params?: Record<string, unknown>): Promise<RpcBody> => {
    const r = await daemon!.rpc(method, params)
    assert.strictEqual(r.status, 200, r.text)
    return r.json as RpcBody
  }

  const ok = async <A>(method: string, params?: Record<string, unknown>): Promise<A> => {
    const body = await rpc(method, params)
    assert.isUndefined(body.error, `${method} failed: ${JSON.stringify(body.error)}${log()}`)
    return body.result as A
  }

  /** Image, state and id of the app's container, or undefined when it does not exist. */
  const inspect = async () => {
    const r = await podman!.cliAsync(
      ["container", "inspect", "--format", "{{.ImageName}} {{.State.Status}} {{.Id}}", container],
      30_000
    )
    if (r.status !== 0) return undefined
    const [image, state, id] = r.stdout.trim().split(" ")
    return { image: image!, state: state!, id: id! }
  }

  const waitFor = async (what: string, ok: () => Promise<boolean> | boolean, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (await ok()) return
      await sleep(250)
    }
    assert.fail(`${what} within ${timeoutMs} ms${log()}`)
  }

  const records = (): Readonly<Record<string, Record_>> => {
    const file = join(stateDir, "upgrades.json")
    return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, Record_>) : {}
  }

  /** The data file is still there, as the host and the container see it. */
  const assertDataKept = async () => {
    assert.strictEqual(readFileSync(keep(), "utf8"), "precious\n")
    const r = await podman!.cliAsync(["exec", container, "cat", "/data/keep.txt"], 30_000)
    assert.strictEqual(r.stdout, "precious\n", r.stderr)
  }

  beforeAll(async () => {
    podman = makePrivatePodman({ prefix: "archy-upg-it-" })
    podman.copyImages([busyboxV1, busyboxV2, busyboxUnhealthy, busyboxNoShell])
    podman.watchNetwork("archipelago")
    await podman.startService()
    appsDir = join(podman.dir, "apps")
    cpSync(join(fixtureAppsDir, app), join(appsDir, app), { recursive: true })
    stateDir = join(podman.dir, "state")
    mkdirSync(stateDir)
    await start()
    await ok("package.install", { id: app })
    await waitFor(
      `${container} running ${busyboxV1}`,
      async () => {
        const c = await inspect()
        return c?.state === "running" && c.image === busyboxV1
      },
      60_000
    )
    writeFileSync(keep(), "precious\n")
  }, 180_000)

  afterAll(async () => {
    for (const d of daemons) {
      d.kill()
      await d.exit
    }
    const problems = (await podman?.dispose()) ?? []
    if (problems.length > 0) console.warn(`upgrade suite cleanup:\n  ${problems.join("\n  ")}`)
  }, 120_000)

  it("bin/archy upgrade to a healthy image commits: the container runs it", slow, async () => {
    const r = await run(
      join(repoRoot, "bin/archy"),
      [
        "upgrade",
        app,
        "--image",
        busyboxV2,
        "--state-dir",
        stateDir,
        "--port",
        String(daemon!.port),
        "--apps",
        appsDir
      ],
      { timeoutMs: 150_000, env: { ...process.env, ARCHY_PODMAN_SOCKET: podman!.socketPath } }
    )
    assert.strictEqual(r.code, 0, `${r.stdout}\n${r.stderr}${log()}`)
    assert.include(r.stdout, `${container}: ${busyboxV1} -> ${busyboxV2}`)
    assert.match(r.stdout, /fx-web: committed: archy-fx-web passed its health check/)
    assert.match(r.stdout, /recreate container:archy-fx-web/)
    const c = await inspect()
    assert.deepInclude(c, { image: busyboxV2, state: "running" })
    const version = await podman!.cliAsync(["exec", container, "cat", "/etc/archy-test-version"])
    assert.strictEqual(version.stdout.trim(), "2")
    await assertDataKept()
    assert.deepInclude(records()[app], { state: "committed", images: { [container]: busyboxV2 } })
    const [status] = await ok<ReadonlyArray<{ upgrade?: Record_ }>>("package.status", { id: app })
    assert.strictEqual(status?.upgrade?.state, "committed")
  })

  it("a later pass keeps the upgraded image (Desired runs it, not the manifest's)", slow, async () => {
    const before = await inspect()
    await ok("system.reconcile")
    const after = await inspect()
    assert.deepStrictEqual(after, before)
  })

  it("package.rollback goes back to the previous image", slow, async () => {
    const result = await ok<Outcome>("package.rollback", { id: app })
    assert.strictEqual(result.outcome, "rolled-back", JSON.stringify(result))
    assert.deepStrictEqual(result.changes, [{ container, from: busyboxV1, to: busyboxV2 }])
    assert.deepInclude(await inspect(), { image: busyboxV1, state: "running" })
    await assertDataKept()
    // Back on the manifest's own image: no override is left.
    assert.deepInclude(records()[app], { state: "rolled-back", images: {} })
    const again = await rpc("package.rollback", { id: app })
    assert.strictEqual(again.error?.code, -32602)
    assert.match(again.error?.message ?? "", /already went back/)
  })

  it("an upgrade to an image that never gets healthy goes back by itself and says why", slow, async () => {
    const before = await inspect()
    const result = await ok<Outcome>("package.update", { id: app, image: busyboxUnhealthy })
    assert.strictEqual(result.outcome, "failed", JSON.stringify(result))
    assert.match(
      result.reason,
      /health gate failed: archy-fx-web on localhost\/archy-test\/busybox:2-unhealthy: health check failed/
    )
    assert.include(result.reason, `back on ${container} ${busyboxV1}`)
    assert.isTrue(
      result.actions.some((a) => a.kind === "recreate" && a.outcome === "done"),
      JSON.stringify(result.actions)
    )
    const c = await inspect()
    assert.deepInclude(c, { image: busyboxV1, state: "running" })
    assert.notStrictEqual(c?.id, before?.id, "it went back through a recreate")
    await assertDataKept()
    // The image it went to is kept too (nothing removes images); the previous one ran again.
    assert.strictEqual((await podman!.cliAsync(["image", "exists", busyboxUnhealthy])).status, 0)
    const [status] = await ok<ReadonlyArray<{ upgrade?: Record_ }>>("package.status", { id: app })
    assert.strictEqual(status?.upgrade?.state, "failed")
    assert.match(status?.upgrade?.reason ?? "", /health check failed/)
  })

  it(
    "an upgrade to an image whose container cannot start goes back by itself, with podman's error",
    slow,
    async () => {
      const result = await ok<Outcome>("package.update", { id: app, image: busyboxNoShell })
      assert.strictEqual(result.outcome, "failed", JSON.stringify(result))
      assert.match(result.reason, /^health gate failed: .*archy-fx-web.*/)
      assert.match(result.reason, /\/bin\/sh/)
      assert.include(result.reason, `back on ${container} ${busyboxV1}`)
      assert.deepInclude(await inspect(), { image: busyboxV1, state: "running" })
      await assertDataKept()
    }
  )

  it("a reference that cannot be pulled fails before anything is touched", slow, async () => {
    const before = await inspect()
    const recordBefore = records()[app]
    const body = await rpc("package.update", { id: app, image: "localhost/archy-test/absent:1" })
    assert.strictEqual(body.error?.code, -32000, JSON.stringify(body))
    assert.match(
      body.error?.message ?? "",
      /cannot pull localhost\/archy-test\/absent:1: .*nothing was changed/
    )
    assert.deepStrictEqual(await inspect(), before)
    assert.deepStrictEqual(records()[app], recordBefore)
    const bad = await rpc("package.update", { id: app, image: "busybox" })
    assert.strictEqual(bad.error?.code, -32602)
    assert.match(bad.error?.message ?? "", /fully qualified image reference/)
    const unknown = await rpc("package.update", { id: app, image: busyboxV2, container: "nope" })
    assert.strictEqual(unknown.error?.code, -32602)
    assert.match(unknown.error?.message ?? "", /has no container nope/)
  })

  it("a daemon killed mid-upgrade judges it again at its next start and goes back", slow, async () => {
    const pending = daemon!.rpc("package.update", { id: app, image: busyboxUnhealthy }).catch(() => undefined)
    await waitFor(
      "the upgrade pending with the container on the new image",
      async () => records()[app]?.state === "pending" && (await inspect())?.image === busyboxUnhealthy,
      60_000
    )
    daemon!.kill()
    await daemon!.exit
    await pending
    assert.strictEqual(records()[app]?.state, "pending")
    await start()
    await waitFor("the resumed upgrade to be decided", () => records()[app]?.state === "failed", 90_000)
    assert.match(records()[app]!.reason, /health check failed/)
    await waitFor(
      `${container} running ${busyboxV1} again`,
      async () => {
        const c = await inspect()
        return c?.state === "running" && c.image === busyboxV1
      },
      60_000
    )
    await assertDataKept()
  })

  it("without a daemon, --direct upgrades and rolls back with passes of its own", slow, async () => {
    for (const d of daemons) {
      d.kill()
      await d.exit
    }
    // Direct runs use the catalog's default selection: make fx-web one of it.
    const manifest = join(appsDir, app, "manifest.yml")
    writeFileSync(manifest, `${readFileSync(manifest, "utf8")}defaultInstalled: true\n`)
    const archy = (args: ReadonlyArray<string>) =>
      run(
        join(repoRoot, "bin/archy"),
        [...args, "--direct", "--state-dir", stateDir, "--apps", appsDir, "--socket", podman!.socketPath],
        { timeoutMs: 150_000 }
      )
    // A direct upgrade stopped midway (the record says pending, the container still runs v1):
    // the next direct command judges it first, then does what it was asked.
    const file = join(stateDir, "upgrades.json")
    const now = Date.now()
    writeFileSync(
      file,
      JSON.stringify({
        [app]: {
          app,
          state: "pending",
          changes: [{ container, from: busyboxV1, to: busyboxV2 }],
          images: { [container]: busyboxV2 },
          reason: "waiting for the health gate",
          startedAtMs: now,
          updatedAtMs: now
        }
      })
    )
    const up = await archy(["upgrade", app, "--image", busyboxV2])
    assert.strictEqual(up.code, 0, `${up.stdout}\n${up.stderr}`)
    assert.match(up.stdout, /an earlier upgrade of fx-web was left pending; judged it again:/)
    assert.match(up.stdout, /fx-web: committed: archy-fx-web passed its health check/)
    assert.match(up.stdout, /fx-web: unchanged: already runs archy-fx-web on the requested image/)
    assert.deepInclude(await inspect(), { image: busyboxV2, state: "running" })
    const status = await archy(["status", "--json"])
    const apps = JSON.parse(status.stdout) as {
      apps: ReadonlyArray<{ id: string; containers: ReadonlyArray<{ current?: boolean }>; upgrade?: Record_ }>
    }
    assert.strictEqual(apps.apps[0]?.containers[0]?.current, true, status.stdout)
    assert.strictEqual(apps.apps[0]?.upgrade?.state, "committed")

    const back = await archy(["rollback", app])
    assert.strictEqual(back.code, 0, `${back.stdout}\n${back.stderr}`)
    assert.match(back.stdout, /fx-web: rolled-back: rolled back on request/)
    assert.deepInclude(await inspect(), { image: busyboxV1, state: "running" })
    const text = await archy(["status"])
    assert.match(text.stdout, /fx-web\s+\(upgrade\)\s+rolled-back\s+rolled back on request/)

    const bad = await archy(["upgrade", app, "--image", "localhost/archy-test/absent:1"])
    assert.strictEqual(bad.code, 1)
    assert.match(bad.stderr, /cannot pull localhost\/archy-test\/absent:1: .*nothing was changed/)
    assert.deepInclude(await inspect(), { image: busyboxV1, state: "running" })
    await assertDataKept()
  })
})
