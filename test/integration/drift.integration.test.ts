/**
 * Drift of a rendered config on real podman: the fixture node brought up by reconcile passes
 * (LibpodRuntime on a private podman store), then fx-bitcoind's bitcoin.conf is edited, deleted
 * and chmod-ed behind archy's back. Each time ONE pass must rewrite exactly that file, restore its
 * bytes and mode, and restart exactly its declared consumer (archy-fx-bitcoind); every other
 * container keeps its id and start time, lnd.conf is never rewritten, and the next pass plans
 * nothing and leaves the file alone.
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { type Catalog, loadCatalog } from "@archy/core/Catalog"
import * as Desired from "@archy/core/Desired"
import { AdoptionStore } from "@archy/engine/AdoptionStore"
import { HealthBook } from "@archy/engine/Health"
import { type ActionReport, reconcileOnce, reconcileUntilSettled } from "@archy/engine/Reconciler"
import { SecretStore } from "@archy/engine/SecretStore"
import * as LibpodRuntime from "@archy/podman/LibpodRuntime"
import type { PodmanRuntime } from "@archy/podman/PodmanRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { fixtureAppsDir, fixtureContainers } from "../fixtures/fixtures.ts"
import { busyboxV1 } from "../images/images.ts"
import { missing } from "./support/Prerequisites.ts"
import {
  copyCatalog,
  makePrivatePodman,
  type PrivatePodman,
  privatePodmanMissing
} from "./support/PrivatePodman.ts"

/** bitcoin.conf's one declared consumer. */
const consumer = "archy-fx-bitcoind"
const slow = { timeout: 120_000 }

const skip = missing("the config drift suite", privatePodmanMissing([busyboxV1]))

interface Inspected {
  readonly status: string
  readonly id: string
  readonly startedAt: string
}

interface FileState {
  readonly bytes: Buffer
  readonly mode: number
  readonly mtimeMs: number
  readonly ino: number
}

const fileState = (path: string): FileState => {
  const st = statSync(path)
  return { bytes: readFileSync(path), mode: st.mode & 0o7777, mtimeMs: st.mtimeMs, ino: st.ino }
}

const summary = (reports: ReadonlyArray<ActionReport>) =>
  reports.map((r) => `${r.action._tag} ${r.action.target} ${r.outcome._tag}`)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe.skipIf(skip !== undefined)("rendered-config drift against real podman (private store)", () => {
  let podman: PrivatePodman | undefined
  let runtime:
    | ManagedRuntime.ManagedRuntime<
        PodmanRuntime | SecretStore | AdoptionStore | HealthBook | NodeServices.NodeServices,
        never
      >
    | undefined
  let appsDir = ""
  let stateDir = ""
  let node: Desired.NodeConfig
  let bitcoinConf = ""
  let lndConf = ""
  /** bitcoin.conf as the settled node rendered it. */
  let rendered: FileState
  /** lnd.conf as the settled node rendered it: no step below may touch it. */
  let lnd: FileState

  const catalog = async (): Promise<Catalog> => {
    const c = await runtime!.runPromise(loadCatalog(appsDir))
    assert.deepStrictEqual(c.issues, [])
    return c
  }
  const input = async () => {
    const c = await catalog()
    return { catalog: c, selection: Desired.defaultSelection(c), node }
  }
  const pass = async () => runtime!.runPromise(reconcileOnce(await input()))

  const inspect = (name: string): Inspected | undefined => {
    const r = podman!.cli([
      "container",
      "inspect",
      "--format",
      "{{.State.Status}} {{.Id}} {{.State.StartedAt}}",
      name
    ])
    if (r.status !== 0) return undefined
    const [status, id, ...started] = r.stdout.trim().split(" ")
    return { status: status!, id: id!, startedAt: started.join(" ") }
  }
  const inspectAll = () => Object.fromEntries(fixtureContainers.map((n) => [n, inspect(n)]))

  const lndUntouched = () => {
    const now = fileState(lndConf)
    assert.strictEqual(now.mtimeMs, lnd.mtimeMs, "lnd.conf was rewritten (its mtime changed)")
    assert.strictEqual(now.ino, lnd.ino, "lnd.conf was replaced (another inode)")
    assert.deepStrictEqual(now.bytes, lnd.bytes)
  }

  /**
   * One pass after `breakIt`: exactly the rewrite of bitcoin.conf (with `cause`) and the restart
   * of its consumer; the file is back byte for byte at 0600; only the consumer restarted; and a
   * second pass plans nothing and leaves the file as the first pass wrote it.
   */
  const healsInOnePass = async (breakIt: () => void, cause: RegExp) => {
    const before = inspectAll()
    for (const name of fixtureContainers) assert.strictEqual(before[name]?.status, "running", name)
    breakIt()

    const reports = await pass()
    assert.deepStrictEqual(summary(reports), [
      `WriteFile file:${bitcoinConf} Done`,
      `Restart container:${consumer} Done`
    ])
    assert.match(reports[0]!.action.cause, cause)
    assert.match(reports[1]!.action.cause, /bitcoin\.conf/)

    const healed = fileState(bitcoinConf)
    assert.deepStrictEqual(healed.bytes, rendered.bytes, "bitcoin.conf's bytes differ from the render")
    assert.strictEqual(healed.mode.toString(8), "600")
    assert.notMatch(healed.bytes.toString("utf8"), /tampered/)

    const after = inspectAll()
    for (const name of fixtureContainers) {
      assert.strictEqual(after[name]?.status, "running", name)
      assert.strictEqual(after[name]?.id, before[name]?.id, `${name} was recreated`)
      if (name === consumer)
        assert.notStrictEqual(after[name]?.startedAt, before[name]?.startedAt, `${name} was not restarted`)
      else assert.strictEqual(after[name]?.startedAt, before[name]?.startedAt, `${name} was restarted`)
    }
    lndUntouched()

    // A second later, so a file the plan took for newer than its consumer's start would show.
    await sleep(1_100)
    const again = await pass()
    assert.deepStrictEqual(summary(again), [], "the pass after the heal planned something")
    const still = fileState(bitcoinConf)
    assert.strictEqual(still.mtimeMs, healed.mtimeMs, "bitcoin.conf was written again")
    assert.strictEqual(still.ino, healed.ino, "bitcoin.conf was replaced again")
    assert.deepStrictEqual(inspectAll(), after)
    lndUntouched()
  }

  beforeAll(async () => {
    podman = makePrivatePodman({ prefix: "archy-drift-it-" })
    podman.copyImages([busyboxV1])
    podman.watchNetwork("archipelago")
    await podman.startService()
    appsDir = join(podman.dir, "apps")
    await copyCatalog(fixtureAppsDir, appsDir)
    stateDir = join(podman.dir, "state")
    mkdirSync(stateDir)
    node = {
      ...Desired.defaultNodeConfig,
      dataRoot: join(stateDir, "apps"),
      secretsDir: join(stateDir, "secrets")
    }
    bitcoinConf = join(node.dataRoot, "fx-bitcoind/data/bitcoin.conf")
    lndConf = join(node.dataRoot, "fx-lnd/data/lnd.conf")
    runtime = ManagedRuntime.make(
      Layer.mergeAll(
        LibpodRuntime.layer({ socketPath: podman.socketPath }),
        SecretStore.layer(node.secretsDir),
        AdoptionStore.layer(join(stateDir, "adopted.json")),
        HealthBook.layer
      ).pipe(Layer.provideMerge(NodeServices.layer))
    )
  }, 120_000)

  afterAll(async () => {
    await runtime?.dispose()
    const problems = (await podman?.dispose()) ?? []
    if (problems.length > 0) console.warn(`drift suite cleanup:\n  ${problems.join("\n  ")}`)
  }, 120_000)

  it("brings the fixture node up and settles: a further pass plans nothing", slow, async () => {
    // fx-lnd waits for fx-bitcoind's health check, the UI for fx-lnd: settle until nothing waits.
    const deadline = Date.now() + 60_000
    let last: ReadonlyArray<ActionReport> = []
    do {
      const settled = await runtime!.runPromise(reconcileUntilSettled(await input(), { pauseMs: 200 }))
      assert.deepStrictEqual(
        settled.reports
          .filter((r) => r.outcome._tag === "Failed" || r.outcome._tag === "Skipped")
          .map((r) => `${r.action.target}: ${JSON.stringify(r.outcome)}`),
        []
      )
      last = settled.last
    } while (last.some((r) => r.outcome._tag === "Waiting") && Date.now() < deadline)
    assert.deepStrictEqual(
      summary(last).filter((s) => s.endsWith(" Waiting")),
      []
    )
    for (const name of fixtureContainers) assert.strictEqual(inspect(name)?.status, "running", name)
    assert.deepStrictEqual(summary(await pass()), [])
    rendered = fileState(bitcoinConf)
    lnd = fileState(lndConf)
    assert.strictEqual(rendered.mode.toString(8), "600")
    assert.match(rendered.bytes.toString("utf8"), /^rpcauth=archipelago:[0-9a-f]{32}\$[0-9a-f]{64}$/m)
    assert.strictEqual(lnd.mode.toString(8), "600")
  })

  it(
    "an edited rpcauth line: one pass restores the bytes and restarts only archy-fx-bitcoind",
    slow,
    async () => {
      await healsInOnePass(() => {
        const text = rendered.bytes.toString("utf8")
        const edited = text.replace(/^rpcauth=.*$/m, "rpcauth=archipelago:tampered$0000")
        assert.notStrictEqual(edited, text)
        writeFileSync(bitcoinConf, edited)
      }, /bitcoin\.conf differs from its render/)
    }
  )

  it("a deleted bitcoin.conf: one pass writes it again and restarts only its consumer", slow, async () => {
    await healsInOnePass(() => rmSync(bitcoinConf), /bitcoin\.conf is missing/)
  })

  it("bitcoin.conf chmod 0644: one pass restores 0600 and restarts only its consumer", slow, async () => {
    await healsInOnePass(() => {
      chmodSync(bitcoinConf, 0o644)
      assert.strictEqual((statSync(bitcoinConf).mode & 0o7777).toString(8), "644")
    }, /bitcoin\.conf has mode 0644, want 0600/)
  })

  it("lnd.conf was never rewritten", slow, () => {
    lndUntouched()
  })
})
