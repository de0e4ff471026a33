/**
 * The upgrade runner on the in-memory runtime, with real files for the records and real time
 * (the gate polls; nothing here asserts how long it took): commit, rollback on demand, an
 * unhealthy image going back by itself, a pull failure changing nothing, a pending upgrade
 * resumed, and a corrupt record file refused by name.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { catalogFromSources } from "@archy/core/Catalog"
import * as Desired from "@archy/core/Desired"
import type { UpgradeRecord } from "@archy/core/Upgrade"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import { AdoptionStore } from "../src/AdoptionStore.ts"
import { HealthBook } from "../src/Health.ts"
import { reconcileOnce } from "../src/Reconciler.ts"
import { SecretStore } from "../src/SecretStore.ts"
import * as Upgrade from "../src/Upgrade.ts"
import { UpgradeStore } from "../src/UpgradeStore.ts"
import { type MemoryRuntimeControl, makeMemoryRuntime } from "./MemoryRuntime.ts"

const v1 = "localhost/test/web:1"
const v2 = "localhost/test/web:2"

const manifest = (health: boolean) => `id: web
name: Web
version: 1.0.0
description: d
category: system
containers:
  - name: web
    image: ${v1}
    mounts:
      - { source: data, target: /data }
${health ? "    health: { command: [test, -f, /ok], interval: 1s, timeout: 1s, retries: 1 }\n" : ""}`

const catalogOf = (health: boolean) =>
  catalogFromSources([{ file: "web/manifest.yml", dir: "/apps/web", dirName: "web", text: manifest(health) }])

type Services = SecretStore | AdoptionStore | HealthBook | UpgradeStore | NodeServices.NodeServices

const withNode = <A, E>(
  health: boolean,
  f: (t: {
    readonly stateDir: string
    readonly control: MemoryRuntimeControl
    readonly ctx: Upgrade.UpgradeContext<unknown>
    readonly image: () => Effect.Effect<string | undefined>
  }) => Effect.Effect<A, E, Services | import("@archy/podman/PodmanRuntime").PodmanRuntime>
) =>
  Effect.gen(function* () {
    const stateDir = mkdtempSync(join(tmpdir(), "archy-upgrade-"))
    const { control, layer: runtime } = yield* makeMemoryRuntime()
    const node = {
      ...Desired.defaultNodeConfig,
      dataRoot: `${stateDir}/apps`,
      secretsDir: `${stateDir}/secrets`
    }
    const catalog = catalogOf(health)
    const input = { catalog, selection: { installed: ["web"], stopped: [] }, node }
    const layer = Layer.mergeAll(
      SecretStore.layer(`${stateDir}/secrets`),
      AdoptionStore.layer(`${stateDir}/adopted.json`),
      UpgradeStore.layer(`${stateDir}/upgrades.json`),
      HealthBook.layer,
      runtime
    ).pipe(Layer.provideMerge(NodeServices.layer))
    const context = yield* Layer.build(layer)
    const ctx: Upgrade.UpgradeContext<unknown> = {
      ...input,
      pass: () => reconcileOnce(input).pipe(Effect.provideContext(context)),
      settleMs: 300,
      graceMs: 5_000,
      rollbackWaitMs: 5_000
    }
    const image = () =>
      Effect.map(Ref.get(control.snapshot), (s) => s.containers.find((c) => c.name === "web")?.image)
    yield* reconcileOnce(input).pipe(Effect.provideContext(context))
    // The image the upgrade goes to is on the node; nothing needs pulling.
    yield* Ref.update(control.snapshot, (s) => ({ ...s, images: [...s.images, { id: "i2", names: [v2] }] }))
    return yield* f({ stateDir, control, ctx, image }).pipe(
      Effect.provideContext(context),
      Effect.ensuring(Effect.sync(() => rmSync(stateDir, { recursive: true, force: true })))
    )
  }).pipe(Effect.scoped)

const recordOf = (stateDir: string): UpgradeRecord =>
  (JSON.parse(readFileSync(join(stateDir, "upgrades.json"), "utf8")) as Record<string, UpgradeRecord>).web!

describe("Upgrade", () => {
  it.live(
    "commits an image that runs (no health check: after the settle time), and rolls back on demand",
    () =>
      withNode(false, ({ stateDir, ctx, image }) =>
        Effect.gen(function* () {
          assert.strictEqual(yield* image(), v1)
          const result = yield* Upgrade.upgrade(ctx, { app: "web", image: v2 })
          assert.strictEqual(result.outcome, "committed")
          assert.match(result.reason, /^web declares no health check and ran \d+ s without exiting$/)
          assert.deepStrictEqual(result.changes, [{ container: "web", from: v1, to: v2 }])
          assert.deepStrictEqual(
            result.actions.map((a) => `${a.action._tag} ${a.outcome._tag}`),
            ["Recreate Done", "Start Done"]
          )
          assert.strictEqual(yield* image(), v2)
          assert.deepInclude(recordOf(stateDir), { state: "committed", images: { web: v2 } })
          // A later pass keeps it: Desired runs the recorded image.
          assert.deepStrictEqual(yield* ctx.pass("again"), [])

          const again = yield* Upgrade.upgrade(ctx, { app: "web", image: v2 })
          assert.strictEqual(again.outcome, "unchanged")

          const back = yield* Upgrade.rollback(ctx, "web")
          assert.strictEqual(back.outcome, "rolled-back")
          assert.strictEqual(yield* image(), v1)
          // v1 is the manifest's own image: no override is left.
          assert.deepInclude(recordOf(stateDir), { state: "rolled-back", images: {} })
          const twice = yield* Effect.flip(Upgrade.rollback(ctx, "web"))
          assert.strictEqual(twice.kind, "invalid")
          assert.match(twice.message, /already went back to web localhost\/test\/web:1/)

          // Without --image: back to the manifest's image, here nothing to do.
          assert.strictEqual((yield* Upgrade.upgrade(ctx, { app: "web" })).outcome, "unchanged")
        })
      )
  )

  it.live("goes back by itself when the new image fails its health check, and says why", () =>
    withNode(true, ({ stateDir, control, ctx, image }) =>
      Effect.gen(function* () {
        control.unhealthy.set("web", "test: /ok: No such file\n")
        const result = yield* Upgrade.upgrade(ctx, { app: "web", image: v2 })
        assert.strictEqual(result.outcome, "failed")
        assert.strictEqual(
          result.reason,
          `health gate failed: web on ${v2}: health check failed 1 times: test: /ok: No such file; back on web ${v1}`
        )
        assert.deepStrictEqual(
          result.actions.map((a) => `${a.action._tag} ${a.outcome._tag}`),
          ["Recreate Done", "Start Done", "Recreate Done", "Start Done"]
        )
        assert.strictEqual(yield* image(), v1)
        assert.deepInclude(recordOf(stateDir), { state: "failed", images: {}, reason: result.reason })
        const rollback = yield* Effect.flip(Upgrade.rollback(ctx, "web"))
        assert.match(rollback.message, /already went back .*\(failed: health gate failed/)
      })
    )
  )

  it.live("a recreate that fails in the pass fails the gate at once, and the app stays on its image", () =>
    withNode(false, ({ stateDir, control, ctx, image }) =>
      Effect.gen(function* () {
        control.failing.add("container:web")
        const result = yield* Upgrade.upgrade(ctx, { app: "web", image: v2 })
        assert.strictEqual(result.outcome, "failed")
        assert.strictEqual(
          result.reason,
          `health gate failed: recreate of web failed: unexpected podman output for Recreate: injected failure; back on web ${v1}`
        )
        assert.strictEqual(yield* image(), v1)
        assert.strictEqual(recordOf(stateDir).state, "failed")
      })
    )
  )

  it.live("a reference that cannot be pulled fails before anything is touched", () =>
    withNode(false, ({ stateDir, control, ctx, image }) =>
      Effect.gen(function* () {
        const v3 = "localhost/test/web:3"
        control.failing.add(`image:${v3}`)
        const applied = control.applied.length
        const error = yield* Effect.flip(Upgrade.upgrade(ctx, { app: "web", image: v3 }))
        assert.strictEqual(error.kind, "failed")
        assert.match(
          error.message,
          /^cannot pull localhost\/test\/web:3: .*injected failure; nothing was changed$/
        )
        assert.deepStrictEqual(control.applied.slice(applied), [`PullImage image:${v3}`])
        assert.strictEqual(yield* image(), v1)
        assert.throws(() => recordOf(stateDir))
      })
    )
  )

  it.live("refuses what it cannot do: an app not installed, a stopped app, an upgrade under way", () =>
    withNode(false, ({ stateDir, ctx }) =>
      Effect.gen(function* () {
        const notInstalled = yield* Effect.flip(
          Upgrade.upgrade({ ...ctx, selection: { installed: [], stopped: [] } }, { app: "web", image: v2 })
        )
        assert.deepInclude(notInstalled, { kind: "invalid", message: "app web is not installed" })
        const stopped = yield* Effect.flip(
          Upgrade.upgrade(
            { ...ctx, selection: { installed: ["web"], stopped: ["web"] } },
            { app: "web", image: v2 }
          )
        )
        assert.match(stopped.message, /app web is stopped: start it first/)
        const store = yield* UpgradeStore
        yield* store.set({
          app: "web",
          state: "pending",
          changes: [{ container: "web", from: v1, to: v2 }],
          images: { web: v2 },
          reason: "",
          startedAtMs: 0,
          updatedAtMs: 0
        })
        const busy = yield* Effect.flip(Upgrade.upgrade(ctx, { app: "web", image: v2 }))
        assert.match(busy.message, /an upgrade of web is under way/)
        assert.strictEqual(recordOf(stateDir).state, "pending")
      })
    )
  )

  it.live("resumes an upgrade a stopped process left pending: the gate decides again", () =>
    withNode(false, ({ stateDir, ctx, image }) =>
      Effect.gen(function* () {
        const store = yield* UpgradeStore
        yield* store.set({
          app: "web",
          state: "pending",
          changes: [{ container: "web", from: v1, to: v2 }],
          images: { web: v2 },
          reason: "waiting",
          startedAtMs: 0,
          updatedAtMs: 0
        })
        assert.deepStrictEqual(yield* Upgrade.pendingApps, ["web"])
        const result = yield* Upgrade.resume(ctx, "web")
        assert.strictEqual(result?.outcome, "committed")
        assert.strictEqual(yield* image(), v2)
        assert.strictEqual(recordOf(stateDir).state, "committed")
        assert.deepStrictEqual(yield* Upgrade.pendingApps, [])
        assert.isUndefined(yield* Upgrade.resume(ctx, "web"))
      })
    )
  )

  it.live("a corrupt upgrades.json stops the pass with its name, not a silent return to the manifests", () =>
    withNode(false, ({ stateDir, ctx, image }) =>
      Effect.gen(function* () {
        writeFileSync(join(stateDir, "upgrades.json"), "{ not json")
        const error = yield* Effect.flip(ctx.pass("corrupt"))
        assert.include(
          String((error as Error).message),
          `${stateDir}/upgrades.json: is not a valid upgrade record`
        )
        assert.strictEqual(yield* image(), v1)
      })
    )
  )
})
