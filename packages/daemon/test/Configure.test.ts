/**
 * `package.configure` and the settings in `package.status`, end to end through the real API
 * server, the real operations and daemon, and real files, over the in-memory podman runtime.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Desired from "@archy/core/Desired"
import { AdoptionStore } from "@archy/engine/AdoptionStore"
import { AppLocks } from "@archy/engine/AppLocks"
import { CrashMemory } from "@archy/engine/CrashBackoff"
import { HealthBook } from "@archy/engine/Health"
import { SecretStore } from "@archy/engine/SecretStore"
import { SettingsStore } from "@archy/engine/SettingsStore"
import { UpgradeStore } from "@archy/engine/UpgradeStore"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import { type MemoryRuntimeControl, makeMemoryRuntime } from "../../engine/test/MemoryRuntime.ts"
import { serve } from "../src/Api.ts"
import * as Daemon from "../src/Daemon.ts"
import type { ConfigureResult, PackageStatus } from "../src/Operations.ts"
import * as OperationsLive from "../src/OperationsLive.ts"
import { SelectionStore } from "../src/SelectionStore.ts"

const appsDir = new URL("../../../test/fixtures/apps/", import.meta.url).pathname
const token = "configure-test-token"

interface Ctx {
  readonly stateDir: string
  readonly control: MemoryRuntimeControl
  readonly rpc: (
    method: string,
    params?: unknown
  ) => Effect.Effect<{ result?: unknown; error?: { code: number; message: string } }, Error>
}

const withNode = <A, E>(body: (ctx: Ctx) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const stateDir = mkdtempSync(join(tmpdir(), "archy-configure-"))
    const { control, layer } = yield* makeMemoryRuntime()
    const config: Daemon.DaemonConfig = {
      appsDir,
      node: {
        ...Desired.defaultNodeConfig,
        dataRoot: join(stateDir, "apps"),
        secretsDir: join(stateDir, "secrets")
      },
      interval: Duration.hours(1),
      debounce: Duration.millis(50),
      healthTick: Duration.hours(1),
      events: false
    }
    const services = Layer.mergeAll(
      layer,
      SecretStore.layer(join(stateDir, "secrets")),
      AdoptionStore.layer(join(stateDir, "adopted.json")),
      SelectionStore.layer(join(stateDir, "selection.json")),
      SettingsStore.layer(join(stateDir, "settings.json")),
      UpgradeStore.layer(join(stateDir, "upgrades.json")),
      HealthBook.layer,
      CrashMemory.layer,
      AppLocks.layer
    ).pipe(Layer.provideMerge(NodeServices.layer))
    return yield* Effect.scoped(
      Effect.gen(function* () {
        const daemon = yield* Daemon.make(config)
        const { port } = yield* serve({ port: 0, token: Redacted.make(token) }).pipe(
          Effect.provide(OperationsLive.layer(daemon, config))
        )
        yield* daemon.start
        let id = 0
        const rpc = (method: string, params?: unknown) =>
          Effect.tryPromise({
            try: async () => {
              const res = await fetch(`http://127.0.0.1:${port}/rpc`, {
                method: "POST",
                headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
                body: JSON.stringify({
                  jsonrpc: "2.0",
                  id: ++id,
                  method,
                  ...(params !== undefined ? { params } : {})
                })
              })
              return (await res.json()) as { result?: unknown; error?: { code: number; message: string } }
            },
            catch: (e) => e as Error
          })
        // Bring the node up: passes until nothing is left to do (dependants wait for health).
        for (let i = 0; i < 10; i++) {
          const pass = yield* daemon.passNow("test")
          if (pass.reports.length === 0) break
        }
        return yield* body({ stateDir, control, rpc })
      })
    ).pipe(
      Effect.provide(services),
      // The daemon logs every action; the test asserts on them instead.
      Effect.provideService(References.MinimumLogLevel, "None"),
      Effect.ensuring(Effect.sync(() => rmSync(stateDir, { recursive: true, force: true })))
    )
  })

const restarts = (control: MemoryRuntimeControl) =>
  control.applied.filter((a) => /^(Restart|Recreate|Create|Remove|Stop) /.test(a))

describe("package.configure", () => {
  it.live("a valid change persists, rewrites the file and restarts exactly its consumers", () =>
    withNode(({ stateDir, control, rpc }) =>
      Effect.gen(function* () {
        const conf = join(stateDir, "apps/fx-bitcoind/data/bitcoin.conf")
        assert.include(readFileSync(conf, "utf8"), "\ndbcache=4\n")
        control.applied.length = 0

        const answer = yield* rpc("package.configure", { id: "fx-bitcoind", settings: { dbcache: 64 } })
        const result = answer.result as ConfigureResult
        assert.deepStrictEqual(result.changed, ["dbcache"])
        assert.deepStrictEqual(
          result.actions.map((a) => `${a.kind} ${a.target} ${a.outcome}`),
          [`write-file file:${conf} done`, "restart container:archy-fx-bitcoind done"]
        )
        assert.deepStrictEqual(restarts(control), ["Restart container:archy-fx-bitcoind"])
        assert.include(readFileSync(conf, "utf8"), "\ndbcache=64\n")
        assert.deepStrictEqual(JSON.parse(readFileSync(join(stateDir, "settings.json"), "utf8")), {
          "fx-bitcoind": { dbcache: 64 }
        })

        // The network reaches fx-lnd's lnd.conf too: both consumers restart, nothing else.
        control.applied.length = 0
        const network = (yield* rpc("package.configure", {
          id: "fx-bitcoind",
          settings: { network: "signet" }
        })).result as ConfigureResult
        assert.deepStrictEqual(network.changed, ["network"])
        assert.deepStrictEqual(restarts(control).sort(), [
          "Restart container:archy-fx-bitcoind",
          "Restart container:archy-fx-lnd"
        ])
        assert.include(
          readFileSync(join(stateDir, "apps/fx-lnd/data/lnd.conf"), "utf8"),
          "\nbitcoin.signet=1\n"
        )

        // The same value again changes nothing and runs no pass.
        control.applied.length = 0
        const again = (yield* rpc("package.configure", { id: "fx-bitcoind", settings: { dbcache: "64" } }))
          .result as ConfigureResult
        assert.deepStrictEqual(again, { changed: [], actions: [] })
        assert.deepStrictEqual(control.applied, [])

        // status reports the effective values and which are defaults.
        const [status] = (yield* rpc("package.status", { id: "fx-bitcoind" }))
          .result as ReadonlyArray<PackageStatus>
        assert.deepStrictEqual(
          status!.settings.map((s) => [s.key, s.value, s.isDefault]),
          [
            ["network", "signet", false],
            ["dbcache", 64, false]
          ]
        )
        const [lnd] = (yield* rpc("package.status", { id: "fx-lnd" })).result as ReadonlyArray<PackageStatus>
        assert.deepStrictEqual(lnd!.settings[0], {
          key: "alias",
          value: "archy-fx-lnd",
          isDefault: true,
          default: "archy-fx-lnd",
          type: "string",
          expected: "text on one line, at most 32 characters",
          description: "The alias in lnd.conf."
        })

        // null puts a setting back to its default.
        const reset = (yield* rpc("package.configure", { id: "fx-bitcoind", settings: { dbcache: null } }))
          .result as ConfigureResult
        assert.deepStrictEqual(reset.changed, ["dbcache"])
        assert.include(readFileSync(conf, "utf8"), "\ndbcache=4\n")
      })
    )
  )

  it.live("invalid changes are refused with the reason and change nothing", () =>
    withNode(({ stateDir, control, rpc }) =>
      Effect.gen(function* () {
        const conf = join(stateDir, "apps/fx-bitcoind/data/bitcoin.conf")
        const before = readFileSync(conf, "utf8")
        control.applied.length = 0
        const cases: ReadonlyArray<readonly [unknown, RegExp]> = [
          [
            { id: "fx-bitcoind", settings: { dbcache: 2 } },
            /fx-bitcoind: dbcache: expected an integer from 4 to 1024 \(MiB\), got 2/
          ],
          [
            { id: "fx-bitcoind", settings: { network: "mainnet" } },
            /network: expected one of regtest, signet, got "mainnet"/
          ],
          [
            { id: "fx-bitcoind", settings: { colour: 1 } },
            /fx-bitcoind has no setting "colour" \(its settings: network, dbcache\)/
          ],
          [{ id: "fx-worker", settings: { x: 1 } }, /fx-worker has no settings/],
          [
            { id: "fx-lnd", settings: { alias: "x".repeat(33) } },
            /alias: expected at most 32 characters, got 33/
          ],
          [{ id: "nope", settings: {} }, /no app "nope" in the catalog/],
          [{ id: "fx-bitcoind", settings: { dbcache: [1] } }, /package.configure expects/],
          [{ id: "fx-bitcoind" }, /package.configure expects/]
        ]
        for (const [params, message] of cases) {
          const answer = yield* rpc("package.configure", params)
          assert.strictEqual(answer.error?.code, -32602, JSON.stringify(answer))
          assert.match(answer.error!.message, message)
        }
        assert.isFalse(existsSync(join(stateDir, "settings.json")))
        assert.strictEqual(readFileSync(conf, "utf8"), before)
        assert.deepStrictEqual(control.applied, [])
      })
    )
  )

  it.live("a corrupt settings.json is an error naming it; the daemon keeps serving", () =>
    withNode(({ stateDir, control, rpc }) =>
      Effect.gen(function* () {
        const file = join(stateDir, "settings.json")
        writeFileSync(file, '{"fx-bitcoind": {"dbcache": ')
        control.applied.length = 0
        const status = yield* rpc("package.status", { id: "fx-bitcoind" })
        assert.strictEqual(status.error?.code, -32000)
        assert.include(status.error!.message, file)
        const configure = yield* rpc("package.configure", { id: "fx-bitcoind", settings: { dbcache: 8 } })
        assert.include(configure.error!.message, file)
        const reconcile = yield* rpc("system.reconcile")
        assert.include(reconcile.error!.message, file)
        // Nothing was touched, the file was left for the operator to fix, and the API still answers.
        assert.deepStrictEqual(control.applied, [])
        assert.strictEqual(readFileSync(file, "utf8"), '{"fx-bitcoind": {"dbcache": ')
        assert.isDefined((yield* rpc("system.health")).result)
      })
    )
  )
})
