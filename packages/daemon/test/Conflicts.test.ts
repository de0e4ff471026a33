/**
 * Installing an app that conflicts with an installed one (Bitcoin Core next to Knots, Fulcrum
 * next to ElectrumX) through the daemon's real operations over the repo's catalog: refused with
 * the reason, nothing persisted, no container touched; accepted once the other is uninstalled.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
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
import * as References from "effect/References"
import { repoAppsDir } from "../../core/test/catalogSources.ts"
import { type MemoryRuntimeControl, makeMemoryRuntime } from "../../engine/test/MemoryRuntime.ts"
import * as Daemon from "../src/Daemon.ts"
import { Operations } from "../src/Operations.ts"
import * as OperationsLive from "../src/OperationsLive.ts"
import { SelectionStore } from "../src/SelectionStore.ts"

const withNode = <A, E>(
  body: (ctx: {
    readonly ops: Operations["Service"]
    readonly control: MemoryRuntimeControl
    readonly selectionFile: string
  }) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    const stateDir = mkdtempSync(join(tmpdir(), "archy-conflicts-"))
    const { control, layer } = yield* makeMemoryRuntime()
    const config: Daemon.DaemonConfig = {
      appsDir: repoAppsDir,
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
    const selectionFile = join(stateDir, "selection.json")
    const services = Layer.mergeAll(
      layer,
      SecretStore.layer(join(stateDir, "secrets")),
      AdoptionStore.layer(join(stateDir, "adopted.json")),
      SelectionStore.layer(selectionFile),
      SettingsStore.layer(join(stateDir, "settings.json")),
      UpgradeStore.layer(join(stateDir, "upgrades.json")),
      HealthBook.layer,
      CrashMemory.layer,
      AppLocks.layer
    ).pipe(Layer.provideMerge(NodeServices.layer))
    return yield* Effect.scoped(
      Effect.gen(function* () {
        const daemon = yield* Daemon.make(config)
        yield* daemon.start
        yield* daemon.passNow("test")
        const ops = yield* Operations.pipe(Effect.provide(OperationsLive.layer(daemon, config)))
        return yield* body({ ops, control, selectionFile })
      })
    ).pipe(
      Effect.provide(services),
      Effect.provideService(References.MinimumLogLevel, "None"),
      Effect.ensuring(Effect.sync(() => rmSync(stateDir, { recursive: true, force: true })))
    )
  })

const installed = (selectionFile: string): ReadonlyArray<string> =>
  (JSON.parse(readFileSync(selectionFile, "utf8")) as { installed: ReadonlyArray<string> }).installed

describe("installing an app that conflicts with an installed one", () => {
  it.live("is refused with the reason, persists nothing and touches no container", () =>
    withNode(({ ops, control, selectionFile }) =>
      Effect.gen(function* () {
        const before = installed(selectionFile)
        assert.includeMembers([...before], ["bitcoin-knots", "electrumx"])
        control.applied.length = 0
        for (const [id, other] of [
          ["bitcoin-core", "bitcoin-knots"],
          ["fulcrum", "electrumx"]
        ] as const) {
          const error = yield* Effect.flip(ops.install(id))
          assert.strictEqual(error.code, -32602)
          assert.strictEqual(error.message, `${id} conflicts with installed app ${other}: uninstall it first`)
        }
        assert.deepStrictEqual(installed(selectionFile), before)
        assert.deepStrictEqual(control.applied, [])
      })
    )
  )

  it.live("is accepted once the other is uninstalled", () =>
    withNode(({ ops, selectionFile }) =>
      Effect.gen(function* () {
        yield* ops.uninstall("bitcoin-knots")
        yield* ops.install("bitcoin-core")
        const now = installed(selectionFile)
        assert.include([...now], "bitcoin-core")
        assert.notInclude([...now], "bitcoin-knots")
      })
    )
  )
})
