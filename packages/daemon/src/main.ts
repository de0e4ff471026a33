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
import { ManifestMemory } from "@archy/engine/ManifestMemory"
import { SecretStore } from "@archy/engine/SecretStore"
import { SettingsStore } from "@archy/engine/SettingsStore"
import { UpgradeStore } from "@archy/engine/UpgradeStore"
import * as Install from "@archy/ota/Install"
import type { MirrorOptions } from "@archy/ota/Mirrors"
import { ServiceManager } from "@archy/ota/ServiceManager"
import * as Updater from "@archy/ota/Updater"
import * as Verifier from "@archy/ota/Verifier"
import type { PodmanRuntime } from "@archy/podman/PodmanRuntime"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
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
  /** Over-the-air updates: the install, the mirrors, and how a new release proves itself. */
  readonly ota: OtaOptions
  /** Called once the API listens and the loops run (the CLI prints where). */
  readonly onReady?: (info: { readonly port: number }) => Effect.Effect<void>
}

export interface OtaOptions {
  readonly installDir: string
  readonly mirrors: MirrorOptions
  readonly webUiUrl: string
  readonly verifyTimeout: Duration.Duration
  readonly maxBoots: number
}

/** Everything the daemon needs besides podman and the platform. */
export const servicesLayer = (stateDir: string) =>
  Layer.mergeAll(
    SecretStore.layer(`${stateDir}/secrets`),
    AdoptionStore.layer(`${stateDir}/adopted.json`),
    SelectionStore.layer(`${stateDir}/selection.json`),
    ManifestMemory.layer(`${stateDir}/manifests.json`),
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
      const install = yield* Install.make(options.ota.installDir)
      // The release this process started from: `update status` tells it apart from `current`.
      const running = yield* install.current.pipe(Effect.orElseSucceed(() => undefined))
      const updater = yield* Updater.make(install, options.ota.mirrors, running)
      const operations = yield* Layer.build(OperationsLive.layer(daemon, config, updater))
      const { port } = yield* serve({ port: options.port, token }).pipe(Effect.provideContext(operations))
      yield* daemon.start
      // An upgrade a stopped daemon left pending is judged again (after the boot pass it waits for).
      yield* Effect.forkScoped(Context.get(operations, Operations).resumeUpgrades)
      yield* Effect.logInfo(
        `daemon ready: API on 127.0.0.1:${port}, catalog ${options.appsDir}${running !== undefined ? `, release ${running}` : ""}`
      )
      yield* Effect.forkScoped(
        Verifier.verifyAtBoot(install, {
          webUiUrl: options.ota.webUiUrl,
          apiPort: port,
          timeout: options.ota.verifyTimeout,
          maxBoots: options.ota.maxBoots,
          pause: Duration.seconds(1),
          settledPass: daemon.passNow("update verification").pipe(
            Effect.map((pass) => {
              const failed = pass.reports.find((r) => r.outcome._tag === "Failed")
              if (failed !== undefined && failed.outcome._tag === "Failed")
                return `${failed.action._tag} ${failed.action.target} failed: ${failed.outcome.error}`
              if (pass.reports.length > 0)
                return `a pass still had ${pass.reports.length} actions to do (${pass.reports[0]!.action._tag} ${pass.reports[0]!.action.target}${pass.catalogIssues > 0 ? `; ${pass.catalogIssues} catalog issues` : ""})`
              if (pass.catalogIssues > 0) return `the catalog has ${pass.catalogIssues} invalid manifests`
              return undefined
            }),
            Effect.catch((e) => Effect.succeed(`the pass could not run: ${e.message}`))
          )
        }).pipe(Effect.catch((e) => Effect.logError(`update verification failed: ${e.message}`)))
      )
      if (options.onReady !== undefined) yield* options.onReady({ port })
      return yield* Effect.never
    })
  ).pipe(Effect.provide(Layer.merge(servicesLayer(options.stateDir), ServiceManager.layerExit)))

export type DaemonRequirements = PodmanRuntime | FileSystem.FileSystem | Path.Path
