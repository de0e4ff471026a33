/**
 * The daemon's answers to the API: selection changes persisted first, then a pass (which takes
 * each app's lock as it acts on it), and views built from podman's snapshot plus the daemon's
 * memory (health verdicts, crash backoff). Nothing here decides what to do to a container:
 * that stays in `plan`.
 */
import { Action } from "@archy/core"
import type { Catalog } from "@archy/core/Catalog"
import { configure as checkConfigure } from "@archy/core/Configure"
import type * as Desired from "@archy/core/Desired"
import { type AppManifest, durationMs } from "@archy/core/Manifest"
import { labels } from "@archy/core/Observed"
import * as Settings from "@archy/core/Settings"
import type { AdoptionStore } from "@archy/engine/AdoptionStore"
import { AppLocks } from "@archy/engine/AppLocks"
import { CrashMemory } from "@archy/engine/CrashBackoff"
import { HealthBook } from "@archy/engine/Health"
import { planNow } from "@archy/engine/Reconciler"
import type { SecretStore } from "@archy/engine/SecretStore"
import { SettingsStore } from "@archy/engine/SettingsStore"
import * as Upgrade from "@archy/engine/Upgrade"
import { UpgradeStore } from "@archy/engine/UpgradeStore"
import { PodmanRuntime } from "@archy/podman/PodmanRuntime"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import type * as Path from "effect/Path"
import type { DaemonConfig, Daemon as DaemonHandle } from "./Daemon.ts"
import {
  type ActionView,
  actionView,
  OperationError,
  Operations,
  type PackageStatus,
  type SettingView,
  type UpgradeOutcome
} from "./Operations.ts"
import { SelectionStore } from "./SelectionStore.ts"

/** The OTA operations as the daemon runs them (main.ts builds them from @archy/ota's Updater). */
export interface Updates {
  readonly check: Effect.Effect<unknown, { readonly message: string }>
  readonly apply: Effect.Effect<unknown, { readonly message: string }>
  readonly status: Effect.Effect<unknown, { readonly message: string }>
  readonly rollback: Effect.Effect<unknown, { readonly message: string }>
}

const serverError = (e: { readonly message: string }) =>
  new OperationError({ code: -32000, message: e.message })

/** An app's settings as status shows them: effective value, default or not, and what they mean. */
const settingViews = (
  manifest: AppManifest | undefined,
  choices: Settings.SettingsChoices
): ReadonlyArray<SettingView> => {
  if (manifest === undefined) return []
  const effective = Settings.effective(manifest.settings, choices[manifest.id])
  return Object.entries(manifest.settings ?? {}).map(([key, decl]) => ({
    key,
    value: effective.values[key]!,
    isDefault: !effective.chosen.includes(key),
    default: decl.default,
    type: decl.type,
    expected: Settings.expected(decl),
    description: decl.description
  }))
}

/** For a daemon without an install (tests of the other operations): every update.* call says so. */
const noUpdates: Updates = (() => {
  const refuse = Effect.fail({ message: "over-the-air updates are not configured in this daemon" })
  return { check: refuse, apply: refuse, status: refuse, rollback: refuse }
})()

export const layer = (daemon: DaemonHandle, config: DaemonConfig, updates: Updates = noUpdates) =>
  Layer.effect(
    Operations,
    Effect.gen(function* () {
      const selection = yield* SelectionStore
      const settingsStore = yield* SettingsStore
      const runtime = yield* PodmanRuntime
      const health = yield* HealthBook
      const crashes = yield* CrashMemory
      const locks = yield* AppLocks
      const upgrades = yield* UpgradeStore
      // Upgrades run in the daemon's scope, not the caller's: a client that stops waiting (or the
      // API's method timeout) must not leave an upgrade half done; it goes on to its verdict.
      const scope = yield* Effect.scope
      const detached = <A, E>(effect: Effect.Effect<A, E>) =>
        Effect.flatMap(Effect.forkIn(effect, scope), Fiber.join)
      const startedAt = yield* Clock.currentTimeMillis
      const services = yield* Effect.context<
        | PodmanRuntime
        | SecretStore
        | AdoptionStore
        | HealthBook
        | AppLocks
        | UpgradeStore
        | FileSystem.FileSystem
        | Path.Path
      >()

      const catalog = daemon.catalog.pipe(Effect.mapError(serverError))
      const known = (c: Catalog, id: string) =>
        c.apps.some((a) => a.manifest.id === id)
          ? Effect.void
          : Effect.fail(new OperationError({ code: -32602, message: `no app "${id}" in the catalog` }))

      /** Changes the selection, then runs a pass and returns what it did to that app. */
      const change = (id: string, f: (s: Desired.Selection, c: Catalog) => Desired.Selection) =>
        Effect.gen(function* () {
          const c = yield* catalog
          yield* known(c, id)
          yield* selection.update(c, (s) => f(s, c)).pipe(Effect.mapError(serverError))
          const pass = yield* daemon.passNow(`api ${id}`).pipe(Effect.mapError(serverError))
          const containers = new Set(
            c.apps
              .filter((a) => a.manifest.id === id)
              .flatMap((a) => a.manifest.containers.map((x) => x.name))
          )
          return pass.reports
            .filter(
              (r) =>
                [...containers].some((n) => r.action.target === `container:${n}`) ||
                r.action.target.includes(`/${id}/`)
            )
            .map(actionView)
        })

      const install = (id: string) =>
        Effect.gen(function* () {
          const c = yield* catalog
          yield* known(c, id)
          const current = yield* selection.get(c).pipe(Effect.mapError(serverError))
          const app = c.apps.find((a) => a.manifest.id === id)!
          const conflict = current.installed.find(
            (other) =>
              (app.manifest.conflicts ?? []).includes(other) ||
              (c.apps.find((a) => a.manifest.id === other)?.manifest.conflicts ?? []).includes(id)
          )
          if (conflict !== undefined) {
            return yield* new OperationError({
              code: -32602,
              message: `${id} conflicts with installed app ${conflict}: uninstall it first`
            })
          }
          return yield* change(id, (s) => ({
            installed: [...s.installed, id],
            stopped: s.stopped.filter((x) => x !== id)
          }))
        })

      const status = (id?: string) =>
        Effect.gen(function* () {
          const c = yield* catalog
          if (id !== undefined) yield* known(c, id)
          const sel = yield* selection.get(c).pipe(Effect.mapError(serverError))
          const choices = yield* settingsStore.get.pipe(Effect.mapError(serverError))
          const snapshot = yield* runtime.observe.pipe(Effect.mapError(serverError))
          const book = yield* health.all
          const crashState = yield* crashes.state
          const now = yield* Clock.currentTimeMillis
          const records = yield* upgrades.all.pipe(Effect.mapError(serverError))
          const ids = id !== undefined ? [id] : sel.installed
          return ids.map((appId): PackageStatus => {
            const record = records[appId]
            const manifest = c.apps.find((a) => a.manifest.id === appId)?.manifest
            const names = manifest?.containers.map((x) => x.name) ?? []
            const observed = snapshot.containers.filter((x) => x.labels[labels.app] === appId)
            return {
              id: appId,
              installed: sel.installed.includes(appId),
              stopped: sel.stopped.includes(appId),
              settings: settingViews(manifest, choices),
              containers: [...new Set([...names, ...observed.map((x) => x.name)])].map((name) => {
                const o = observed.find((x) => x.name === name)
                const h = book.get(name)
                const crash = crashState.get(name)
                const backingOff = crash !== undefined && crash.untilMs > now
                const reason = backingOff
                  ? `backing off after ${crash.crashes} crashes (last exit code ${crash.lastExitCode ?? "?"}) until ${new Date(crash.untilMs).toISOString()}`
                  : h !== undefined && h.reason !== ""
                    ? h.reason
                    : undefined
                return {
                  name,
                  state: o?.state ?? "missing",
                  ...(h !== undefined && o?.state === "running" ? { health: h.status } : {}),
                  ...(reason !== undefined ? { reason } : {}),
                  ...(o?.exitCode !== undefined && o.state !== "running" ? { exitCode: o.exitCode } : {}),
                  ...(o?.startedAtMs !== undefined
                    ? { startedAt: new Date(o.startedAtMs).toISOString() }
                    : {}),
                  ...(backingOff ? { backoffUntil: new Date(crash.untilMs).toISOString() } : {})
                }
              }),
              ...(record !== undefined
                ? {
                    upgrade: {
                      state: record.state,
                      changes: record.changes,
                      reason: record.reason,
                      startedAt: new Date(record.startedAtMs).toISOString(),
                      updatedAt: new Date(record.updatedAtMs).toISOString()
                    }
                  }
                : {})
            }
          })
        })

      /** What an upgrade runs on: the catalog and selection now, and the daemon's own passes. */
      const upgradeContext = Effect.gen(function* () {
        const c = yield* catalog
        const sel = yield* selection.get(c).pipe(Effect.mapError(serverError))
        const context: Upgrade.UpgradeContext<unknown> = {
          catalog: c,
          selection: sel,
          node: config.node,
          pass: (reason) => daemon.passNow(reason).pipe(Effect.map((p) => p.reports))
        }
        return context
      })

      const outcome = (r: Upgrade.UpgradeResult): UpgradeOutcome => ({
        id: r.app,
        outcome: r.outcome,
        changes: r.changes,
        reason: r.reason,
        actions: r.actions.map(actionView)
      })

      const upgradeError = (e: Upgrade.UpgradeError) =>
        new OperationError({ code: e.kind === "invalid" ? -32602 : -32000, message: e.message })

      return Operations.of({
        list: Effect.gen(function* () {
          const c = yield* catalog
          const sel = yield* selection.get(c).pipe(Effect.mapError(serverError))
          return c.apps.map((a) => ({
            id: a.manifest.id,
            name: a.manifest.name,
            version: a.manifest.version,
            description: a.manifest.description,
            category: a.manifest.category,
            installed: sel.installed.includes(a.manifest.id),
            running: sel.installed.includes(a.manifest.id) && !sel.stopped.includes(a.manifest.id)
          }))
        }),
        status,
        install,
        uninstall: (id) =>
          change(id, (s) => ({
            installed: s.installed.filter((x) => x !== id),
            stopped: s.stopped.filter((x) => x !== id)
          })),
        start: (id) =>
          change(id, (s) => ({ installed: s.installed, stopped: s.stopped.filter((x) => x !== id) })),
        stop: (id) => change(id, (s) => ({ installed: s.installed, stopped: [...s.stopped, id] })),
        restart: (id) =>
          Effect.gen(function* () {
            const c = yield* catalog
            yield* known(c, id)
            const app = c.apps.find((a) => a.manifest.id === id)!
            const snapshot = yield* runtime.observe.pipe(Effect.mapError(serverError))
            const running = snapshot.containers.filter(
              (x) => x.labels[labels.app] === id && x.state === "running"
            )
            const out: Array<ActionView> = []
            // Under the app's lock: a pass never acts on this app while we restart it.
            yield* locks.withApps(
              [id],
              Effect.forEach(running, (x) => {
                const spec = app.manifest.containers.find((m) => m.name === x.name)
                const action = Action.Action.Restart({
                  target: `container:${x.name}`,
                  cause: "restart requested through the API",
                  name: x.name,
                  timeoutSeconds: Math.ceil(durationMs(spec?.stopTimeout, 30_000) / 1000)
                })
                return runtime.apply(action).pipe(
                  Effect.map(() =>
                    out.push({ kind: "restart", target: action.target, cause: action.cause, outcome: "done" })
                  ),
                  Effect.mapError(serverError)
                )
              })
            )
            return out
          }),
        update: (request) =>
          detached(
            Effect.gen(function* () {
              const ctx = yield* upgradeContext
              const result = yield* Upgrade.upgrade(ctx, {
                app: request.id,
                ...(request.image !== undefined ? { image: request.image } : {}),
                ...(request.container !== undefined ? { container: request.container } : {})
              }).pipe(Effect.mapError(upgradeError))
              yield* Effect.logInfo(`upgrade ${request.id}: ${result.outcome}: ${result.reason}`)
              return outcome(result)
            }).pipe(Effect.provideContext(services))
          ),
        rollback: (id) =>
          detached(
            Effect.gen(function* () {
              const ctx = yield* upgradeContext
              const result = yield* Upgrade.rollback(ctx, id).pipe(Effect.mapError(upgradeError))
              yield* Effect.logInfo(`rollback ${id}: ${result.reason}`)
              return outcome(result)
            }).pipe(Effect.provideContext(services))
          ),
        resumeUpgrades: Effect.gen(function* () {
          const apps = yield* Upgrade.pendingApps
          yield* Effect.forEach(
            apps,
            (app) =>
              Effect.gen(function* () {
                yield* Effect.logInfo(`upgrade ${app}: left pending by the last run; judging it again`)
                const ctx = yield* upgradeContext
                const result = yield* Upgrade.resume(ctx, app)
                if (result !== undefined)
                  yield* Effect.logInfo(`upgrade ${app}: ${result.outcome}: ${result.reason}`)
              }).pipe(
                Effect.catch((e) => Effect.logError(`upgrade ${app}: could not be resumed: ${e.message}`))
              ),
            { concurrency: "unbounded", discard: true }
          )
        }).pipe(
          Effect.catch((e) => Effect.logError(`pending upgrades: ${e.message}`)),
          Effect.provideContext(services)
        ),
        configure: (id, changes) =>
          Effect.gen(function* () {
            const c = yield* catalog
            yield* known(c, id)
            const sel = yield* selection.get(c).pipe(Effect.mapError(serverError))
            let changed: ReadonlyArray<string> = []
            // Checked and written under the store's lock, so two changes at once both stick.
            yield* settingsStore
              .update((choices) => {
                const result = checkConfigure({
                  catalog: c,
                  selection: sel,
                  node: config.node,
                  choices,
                  app: id,
                  changes
                })
                if (result._tag === "Refused") {
                  return Effect.fail(
                    new OperationError({ code: -32602, message: `${id}: ${result.reasons.join("; ")}` })
                  )
                }
                changed = result.changed
                return Effect.succeed(result.choices)
              })
              .pipe(Effect.mapError((e) => (e instanceof OperationError ? e : serverError(e))))
            if (changed.length === 0) return { changed, actions: [] }
            const pass = yield* daemon.passNow(`configure ${id}`).pipe(Effect.mapError(serverError))
            return { changed, actions: pass.reports.map(actionView) }
          }),
        plan: Effect.gen(function* () {
          const c = yield* catalog
          const sel = yield* selection.get(c).pipe(Effect.mapError(serverError))
          const settings = yield* settingsStore.get.pipe(Effect.mapError(serverError))
          const p = yield* planNow({ catalog: c, selection: sel, node: config.node, settings }).pipe(
            Effect.mapError(serverError)
          )
          return p.actions.map((a) => Action.toJson(a))
        }).pipe(Effect.provideContext(services)),
        reconcile: daemon.passNow("api").pipe(
          Effect.map((p) => p.reports.map(actionView)),
          Effect.mapError(serverError)
        ),
        updateCheck: updates.check.pipe(Effect.mapError(serverError)),
        updateApply: updates.apply.pipe(Effect.mapError(serverError)),
        updateStatus: updates.status.pipe(Effect.mapError(serverError)),
        updateRollback: updates.rollback.pipe(Effect.mapError(serverError)),
        health: Effect.gen(function* () {
          const c = yield* catalog
          const podman = yield* runtime.observe.pipe(Effect.result)
          const last = yield* daemon.lastPass
          const now = yield* Clock.currentTimeMillis
          return {
            podman: podman._tag === "Success" ? ("reachable" as const) : ("unreachable" as const),
            ...(podman._tag === "Failure" ? { podmanDetail: podman.failure.message } : {}),
            ...(last !== undefined
              ? {
                  lastPass: {
                    at: new Date(last.atMs).toISOString(),
                    ms: last.ms,
                    actions: last.reports.length,
                    failed: last.reports.filter((r) => r.outcome._tag === "Failed").length
                  }
                }
              : {}),
            catalogIssues: c.issues.length,
            uptimeSeconds: Math.round((now - startedAt) / 1000)
          }
        })
      })
    })
  )
