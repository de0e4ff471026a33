/**
 * Reconcile passes against real podman, with the fixture catalog (test/fixtures/apps), through
 * each adapter: bring a node up, then break it the ways the field did and check that one pass
 * heals exactly what broke and nothing else.
 *
 * Each adapter runs on a private podman store (a pass removes every container with our labels
 * whose app its catalog does not name), with the catalog's host ports moved to free ones, so two
 * runs on one machine do not meet.
 */
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { type Catalog, loadCatalog } from "@archy/core/Catalog"
import * as Desired from "@archy/core/Desired"
import { AdoptionStore } from "@archy/engine/AdoptionStore"
import { HealthBook } from "@archy/engine/Health"
import { type ActionReport, reconcileOnce, reconcileUntilSettled } from "@archy/engine/Reconciler"
import { SecretStore } from "@archy/engine/SecretStore"
import * as CliRuntime from "@archy/podman/CliRuntime"
import * as LibpodRuntime from "@archy/podman/LibpodRuntime"
import { PodmanRuntime } from "@archy/podman/PodmanRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Effect from "effect/Effect"
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

const slow = { timeout: 120_000 }
const skip = missing("the reconcile suite", privatePodmanMissing([busyboxV1]))

type Adapter = "libpod" | "cli"

describe.skipIf(skip !== undefined).each<Adapter>(["libpod", "cli"])(
  "reconcile against real podman (%s)",
  (adapter) => {
    let podman: PrivatePodman | undefined
    /** `podman ARGS` on this suite's store. */
    const podmanCli = (args: ReadonlyArray<string>) => podman!.cli(args)
    /** id and state of a container, straight from podman. */
    const inspect = (name: string): { readonly id: string; readonly state: string } | undefined => {
      const r = podmanCli(["inspect", "--format", "{{.Id}} {{.State.Status}}", name])
      if (r.status !== 0) return undefined
      const [id, state] = r.stdout.trim().split(" ")
      return { id: id!, state: state! }
    }
    let runtime: ManagedRuntime.ManagedRuntime<
      PodmanRuntime | SecretStore | AdoptionStore | HealthBook | NodeServices.NodeServices,
      never
    >
    let stateDir = ""
    let appsDir = ""
    let node: Desired.NodeConfig
    /** Set by a test to inject a fault just before an action reaches podman. */
    let beforeApply: ((target: string) => void) | undefined

    const catalog = (): Promise<Catalog> => runtime.runPromise(loadCatalog(appsDir))
    const pass = async (): Promise<{
      readonly reports: ReadonlyArray<ActionReport>
      readonly calls: number
    }> => {
      const c = await catalog()
      assert.deepStrictEqual(c.issues, [])
      return runtime.runPromise(
        Effect.gen(function* () {
          const podman = yield* PodmanRuntime
          const before = yield* podman.calls
          const reports = yield* reconcileOnce({ catalog: c, selection: Desired.defaultSelection(c), node })
          return { reports, calls: (yield* podman.calls) - before }
        })
      )
    }
    const summary = (reports: ReadonlyArray<ActionReport>) =>
      reports.map((r) => `${r.action._tag} ${r.action.target} ${r.outcome._tag}`)

    beforeAll(async () => {
      podman = makePrivatePodman({ prefix: "archy-rec-it-" })
      podman.copyImages([busyboxV1])
      podman.watchNetwork(Desired.defaultNodeConfig.network.name)
      stateDir = join(podman.dir, "state")
      mkdirSync(stateDir)
      appsDir = join(stateDir, "catalog")
      await copyCatalog(fixtureAppsDir, appsDir)
      node = {
        ...Desired.defaultNodeConfig,
        dataRoot: join(stateDir, "apps"),
        secretsDir: join(stateDir, "secrets")
      }
      if (adapter === "libpod") await podman.startService()
      const runtimeLayer =
        adapter === "libpod"
          ? LibpodRuntime.layer({ socketPath: podman.socketPath })
          : CliRuntime.layer({ globalArgs: podman.store })
      const faulty = Layer.effect(
        PodmanRuntime,
        Effect.gen(function* () {
          const real = yield* PodmanRuntime
          return PodmanRuntime.of({
            ...real,
            apply: (action, progress) =>
              Effect.suspend(() => {
                beforeApply?.(action.target)
                return real.apply(action, progress)
              })
          })
        })
      ).pipe(Layer.provide(runtimeLayer))
      runtime = ManagedRuntime.make(
        Layer.mergeAll(
          faulty,
          SecretStore.layer(join(stateDir, "secrets")),
          AdoptionStore.layer(join(stateDir, "adopted.json")),
          HealthBook.layer
        ).pipe(Layer.provideMerge(NodeServices.layer))
      )
    }, 120_000)

    afterAll(async () => {
      await runtime?.dispose()
      const problems = (await podman?.dispose()) ?? []
      assert.deepStrictEqual(problems, [], "the private podman was not cleaned up")
    }, 120_000)

    it(
      "brings an empty node to running: a pass, then dependants once their dependency is healthy",
      slow,
      async () => {
        const c = await catalog()
        const first = await pass()
        // fx-lnd waits for fx-bitcoind's health check; the UI waits for fx-lnd.
        assert.includeMembers(summary(first.reports), [
          "Wait container:archy-fx-lnd Waiting",
          "Wait container:archy-fx-ui Waiting"
        ])
        const { reports } = await runtime.runPromise(
          reconcileUntilSettled(
            { catalog: c, selection: Desired.defaultSelection(c), node },
            // Passes, not time, are the budget: on a busy machine a health check takes more of them.
            { pauseMs: 200, maxPasses: 60 }
          )
        )
        assert.deepStrictEqual(
          reports
            .filter((r) => r.outcome._tag !== "Done")
            .map((r) => `${r.action.target}: ${JSON.stringify(r.outcome)}`),
          []
        )
        for (const name of fixtureContainers) assert.strictEqual(inspect(name)?.state, "running", name)
        assert.match(readFileSync(join(node.dataRoot, "fx-bitcoind/data/bitcoin.conf"), "utf8"), /^rpcauth=/m)
      }
    )

    it("a second pass plans nothing and makes exactly one podman call", slow, async () => {
      const { reports, calls } = await pass()
      assert.deepStrictEqual(summary(reports), [])
      assert.strictEqual(calls, 1)
    })

    it("a changed spec recreates only that container", slow, async () => {
      const before = Object.fromEntries(fixtureContainers.map((n) => [n, inspect(n)!.id]))
      const file = join(appsDir, "fx-worker/manifest.yml")
      writeFileSync(
        file,
        readFileSync(file, "utf8").replace("QUEUE: archy-fx-worker-queue", "QUEUE: renamed-queue")
      )
      const { reports } = await pass()
      assert.deepStrictEqual(summary(reports), [
        "Recreate container:archy-fx-worker Done",
        "Start container:archy-fx-worker Done"
      ])
      for (const [name, id] of Object.entries(before)) {
        if (name === "archy-fx-worker") assert.notStrictEqual(inspect(name)!.id, id)
        else assert.strictEqual(inspect(name)!.id, id, name)
      }
      assert.strictEqual(inspect("archy-fx-worker")!.state, "running")
    })

    it("a stopped container is started; a removed one is recreated", slow, async () => {
      podmanCli(["stop", "-t", "0", "archy-fx-worker-queue"])
      podmanCli(["rm", "-f", "-t", "0", "archy-fx-ui"])
      const { reports } = await pass()
      assert.deepStrictEqual(summary(reports), [
        "Create container:archy-fx-ui Done",
        "Start container:archy-fx-ui Done",
        "Start container:archy-fx-worker-queue Done"
      ])
      assert.strictEqual(inspect("archy-fx-ui")!.state, "running")
      assert.strictEqual(inspect("archy-fx-worker-queue")!.state, "running")
    })

    it(
      "an unlabeled container with a known name and matching image is adopted, not recreated",
      slow,
      async () => {
        podmanCli(["rm", "-f", "-t", "0", "archy-fx-worker-queue"])
        const created = podmanCli([
          "run",
          "-d",
          "--name",
          "archy-fx-worker-queue",
          "localhost/archy-test/busybox:1"
        ])
        assert.strictEqual(created.status, 0, created.stderr)
        const id = inspect("archy-fx-worker-queue")!.id
        const { reports } = await pass()
        assert.deepStrictEqual(summary(reports), ["Adopt container:archy-fx-worker-queue Done"])
        assert.strictEqual(inspect("archy-fx-worker-queue")!.id, id)
        const again = await pass()
        assert.deepStrictEqual(summary(again.reports), [])
      }
    )

    it("ours without an app is removed; a container without our labels is never touched", slow, async () => {
      const orphan = podmanCli([
        "create",
        "--name",
        "archy-fx-orphan",
        "--label",
        "io.archipelago.app=uninstalled-app",
        "--label",
        "io.archipelago.container=archy-fx-orphan",
        "localhost/archy-test/busybox:1"
      ])
      assert.strictEqual(orphan.status, 0, orphan.stderr)
      const foreign = podmanCli(["run", "-d", "--name", "archy-fx-foreign", "localhost/archy-test/busybox:1"])
      assert.strictEqual(foreign.status, 0, foreign.stderr)
      const { reports } = await pass()
      assert.deepStrictEqual(summary(reports), ["Remove container:archy-fx-orphan Done"])
      assert.isUndefined(inspect("archy-fx-orphan"))
      assert.strictEqual(inspect("archy-fx-foreign")!.state, "running")
      podmanCli(["rm", "-f", "-t", "0", "archy-fx-foreign"])
    })

    it(
      "a name taken mid-pass fails with NameInUse and the pass goes on with the other apps",
      slow,
      async () => {
        podmanCli(["rm", "-f", "-t", "0", "archy-fx-ui", "archy-fx-worker"])
        // Someone creates a container with the UI's name between our observe and our create.
        beforeApply = (target) => {
          if (target === "container:archy-fx-ui")
            podmanCli(["create", "--name", "archy-fx-ui", "localhost/archy-test/busybox:1"])
        }
        const { reports } = await pass().finally(() => {
          beforeApply = undefined
        })
        const ui = reports.filter((r) => r.action.target === "container:archy-fx-ui")
        assert.deepStrictEqual(
          ui.map((r) => r.outcome._tag),
          ["Failed", "Skipped"]
        )
        assert.include(ui[0]!.outcome._tag === "Failed" ? ui[0]!.outcome.error : "", "already in use")
        assert.strictEqual(inspect("archy-fx-worker")!.state, "running")
        // The intruder has no labels but the UI's name: the next pass adopts it (same image? no: the
        // manifest builds its own), so it is recreated under our labels.
        const next = await pass()
        assert.includeMembers(summary(next.reports), [
          "Adopt container:archy-fx-ui Done",
          "Recreate container:archy-fx-ui Done"
        ])
        assert.strictEqual(inspect("archy-fx-ui")!.state, "running")
      }
    )

    it(
      "a missing image fails its app with ImageMissing and the pass goes on with the others",
      slow,
      async () => {
        const dir = join(appsDir, "fx-broken")
        cpSync(join(appsDir, "fx-worker"), dir, { recursive: true })
        writeFileSync(
          join(dir, "manifest.yml"),
          [
            "id: fx-broken",
            "name: Broken fixture",
            "version: 1.0.0",
            "description: An app whose image exists nowhere.",
            "category: system",
            "defaultInstalled: true",
            "containers:",
            "  - name: archy-fx-broken",
            "    image: localhost/archy-test/does-not-exist:1",
            "    stopTimeout: 1s",
            ""
          ].join("\n")
        )
        podmanCli(["stop", "-t", "0", "archy-fx-worker"])
        const { reports } = await pass()
        rmSync(dir, { recursive: true, force: true })
        const broken = reports.filter(
          (r) => r.action.target.includes("does-not-exist") || r.action.target.endsWith("archy-fx-broken")
        )
        assert.deepStrictEqual(
          broken.map((r) => `${r.action._tag} ${r.outcome._tag}`),
          ["PullImage Failed", "Create Skipped", "Start Skipped"]
        )
        const pull = broken[0]!.outcome
        assert.match(
          pull._tag === "Failed" ? pull.error : "",
          /image localhost\/archy-test\/does-not-exist:1 is missing/
        )
        assert.include(summary(reports), "Start container:archy-fx-worker Done")
        assert.strictEqual(inspect("archy-fx-worker")!.state, "running")
      }
    )
  }
)
