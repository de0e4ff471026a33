/**
 * Runs the node daemon: builds the services (podman runtime, secrets, adoption records, health
 * verdicts, crash memory, app locks, the persisted selection), creates the API token on first
 * start, serves the JSON-RPC API on 127.0.0.1, starts the reconciler's loops, and runs until
 * interrupted (SIGTERM/SIGINT), when the action under way finishes and everything closes.
 */
import type * as Desired from "@archy/core/Desired"
import { AdoptionStore } from "@archy/engine/AdoptionStore"
import { AppLocks } from "@archy/engine/AppLocks"
import { CrashMemory } from "@archy/engine/CrashBackoff"
import { HealthBook } from "@archy/engine/Health"
import { SecretStore } from "@archy/engine/SecretStore"
import { SettingsStore } from "@archy/engine/SettingsStore"
import { UpgradeStore } from "@archy/engine/UpgradeStore"
import type { PodmanRuntime } from "@archy/podman/PodmanRuntime"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import type * as Path from "effect/Path"
import { ensureToken, serve } from "./Api.ts"
import * as Daemon from "./Daemon.ts"
import { Operations } from "./Operations.ts"
import * as OperationsLive from "./OperationsLive.ts"
import { SelectionStore } from "./SelectionStore.ts"

export interface DaemonOptions {
  readonly appsDir: string
  readonly stateDir: string
  readonly node: Desired.NodeConfig
  readonly port: number
  readonly interval: Duration.Duration
  readonly debounce: Duration.Duration
  readonly healthTick: Duration.Duration
  readonly events: boolean
  /** Called once the API listens and the loops run (the CLI prints where). */
  readonly onReady?: (info: { readonly port: number }) => Effect.Effect<void>
}

/** Everything the daemon needs besides podman and the platform. */
export const servicesLayer = (stateDir: string) =>
  Layer.mergeAll(
    SecretStore.layer(`${stateDir}/secrets`),
    AdoptionStore.layer(`${stateDir}/adopted.json`),
    SelectionStore.layer(`${stateDir}/selection.json`),
    UpgradeStore.layer(`${stateDir}/upgrades.json`),
    SettingsStore.layer(`${stateDir}/settings.json`),
    HealthBook.layer,
    CrashMemory.layer,
    AppLocks.layer
  )

/** Runs until interrupted. Needs a PodmanRuntime and the platform's FileSystem and Path. */
export const run = (options: DaemonOptions) =>
  Effect.scoped(
    Effect.gen(function* () {
      const config: Daemon.DaemonConfig = {
        appsDir: options.appsDir,
        node: options.node,
        interval: options.interval,
        debounce: options.debounce,
        healthTick: options.healthTick,
        events: options.events
      }
      const daemon = yield* Daemon.make(config)
      const token = yield* ensureToken
      const operations = yield* Layer.build(OperationsLive.layer(daemon, config))
      const { port } = yield* serve({ port: options.port, token }).pipe(Effect.provideContext(operations))
      yield* daemon.start
      // An upgrade a stopped daemon left pending is judged again (after the boot pass it waits for).
      yield* Effect.forkScoped(Context.get(operations, Operations).resumeUpgrades)
      yield* Effect.logInfo(`daemon ready: API on 127.0.0.1:${port}, catalog ${options.appsDir}`)
      if (options.onReady !== undefined) yield* options.onReady({ port })
      return yield* Effect.never
    })
  ).pipe(Effect.provide(servicesLayer(options.stateDir)))

export type DaemonRequirements = PodmanRuntime | FileSystem.FileSystem | Path.Path
