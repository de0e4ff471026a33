/**
 * The daemon's heart: a boot pass at once, then a pass every `interval`, a pass shortly after
 * any podman event about a container (debounced; the event stream is re-subscribed whenever it
 * ends), and a pass when a health verdict changes. Triggers coalesce in a one-slot queue and a
 * single worker runs the passes, so passes never overlap and a burst of events costs one pass.
 *
 * The operations behind the API (install, stop, …) change the persisted selection and then ask
 * for a pass, waiting for it; the reconciler's per-app locks keep them off each other's apps.
 */
import { type Catalog, loadCatalog } from "@archy/core/Catalog"
import type * as Desired from "@archy/core/Desired"
import { formatIssue } from "@archy/core/Manifest"
import { checkNow, HealthBook, policyOf } from "@archy/engine/Health"
import { ManifestMemory } from "@archy/engine/ManifestMemory"
import { type ActionReport, reconcileOnce } from "@archy/engine/Reconciler"
import { SettingsStore } from "@archy/engine/SettingsStore"
import { PodmanRuntime } from "@archy/podman/PodmanRuntime"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import type * as Path from "effect/Path"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { SelectionStore } from "./SelectionStore.ts"

export interface DaemonConfig {
  readonly appsDir: string
  readonly node: Desired.NodeConfig
  /** Time between timer passes (30 s on a node). */
  readonly interval: Duration.Duration
  /** Quiet time after a podman event before the pass it triggers. */
  readonly debounce: Duration.Duration
  /** How often the health checker looks for checks that are due. */
  readonly healthTick: Duration.Duration
  /** Whether to react to podman events (off: the timer alone, for comparison). */
  readonly events: boolean
}

export interface PassSummary {
  readonly reason: string
  readonly atMs: number
  readonly ms: number
  readonly reports: ReadonlyArray<ActionReport>
  readonly catalogIssues: number
}

/** Container events that can mean a container we own needs healing. */
const healingEvents = new Set(["died", "stop", "remove", "kill", "cleanup", "exited", "oom"])

/** A pass that could not run at all (podman unreachable, catalog unreadable, …). */
export class PassFailed extends Data.TaggedError("PassFailed")<{ readonly message: string }> {}

interface PassRequest {
  readonly reason: string
  readonly done?: Deferred.Deferred<PassSummary, PassFailed>
}

export const make = Effect.fn("Daemon.make")(function* (config: DaemonConfig) {
  const selection = yield* SelectionStore
  const runtime = yield* PodmanRuntime
  const health = yield* HealthBook
  const requests = yield* Queue.unbounded<PassRequest>()
  const lastPass = yield* Ref.make<PassSummary | undefined>(undefined)
  const lastCatalog = yield* Ref.make<Catalog | undefined>(undefined)
  const passes = yield* Ref.make(0)
  const platform = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
  // Without a settings store (some tests) every app runs on its defaults.
  const settingsStore = yield* Effect.serviceOption(SettingsStore)

  const memory = yield* Effect.serviceOption(ManifestMemory)
  // With a memory, an app whose manifest breaks keeps its last good one (reported each pass).
  const load =
    memory._tag === "Some"
      ? Effect.map(memory.value.load(config.appsDir), (r) => r.catalog)
      : loadCatalog(config.appsDir)
  const catalogNow = load.pipe(
    Effect.provideContext(platform),
    Effect.tap((c) => Ref.set(lastCatalog, c)),
    // An unreadable catalog directory keeps the last good one rather than stopping the node.
    Effect.catch((e) =>
      Effect.flatMap(Ref.get(lastCatalog), (last) =>
        last === undefined
          ? Effect.fail(e)
          : Effect.as(Effect.logWarning(`catalog unreadable: ${e.message}`), last)
      )
    )
  )

  const runPass = Effect.fn("Daemon.pass")(function* (reason: string) {
    const started = yield* Clock.currentTimeMillis
    const catalog = yield* catalogNow
    for (const issue of catalog.issues) yield* Effect.logWarning(formatIssue(issue))
    const sel = yield* selection.get(catalog)
    // A corrupt settings file fails the pass (logged, naming the file) and leaves the node as it
    // is: falling back to defaults could switch bitcoind's network.
    const settings = Option.isSome(settingsStore) ? yield* settingsStore.value.get : {}
    const reports = yield* reconcileOnce(
      { catalog, selection: sel, node: config.node, settings },
      {
        onAction: (r) =>
          (r.outcome._tag === "Failed" ? Effect.logError : Effect.logInfo)(
            `${r.action._tag} ${r.action.target}: ${r.outcome._tag.toLowerCase()}`
          ).pipe(
            Effect.annotateLogs({
              action: r.action._tag,
              target: r.action.target,
              cause: r.action.cause,
              outcome: r.outcome._tag,
              ...(r.outcome._tag === "Failed" ? { error: r.outcome.error } : {}),
              ...(r.outcome._tag === "Skipped" ? { reason: r.outcome.reason } : {})
            })
          )
      }
    )
    const summary: PassSummary = {
      reason,
      atMs: started,
      ms: (yield* Clock.currentTimeMillis) - started,
      reports,
      catalogIssues: catalog.issues.length
    }
    yield* Ref.set(lastPass, summary)
    yield* Ref.update(passes, (n) => n + 1)
    return summary
  })

  /** The single worker: one pass at a time; pending requests coalesce into the next pass. */
  const worker = Effect.forever(
    Effect.gen(function* () {
      const first = yield* Queue.take(requests)
      const rest = yield* Queue.clear(requests)
      const batch = [first, ...rest]
      const reason = [...new Set(batch.map((r) => r.reason))].join(", ")
      const result = yield* Effect.exit(runPass(reason))
      if (result._tag === "Failure") {
        yield* Effect.logError(`pass failed: ${result.cause}`)
      }
      for (const r of batch) {
        if (r.done === undefined) continue
        if (result._tag === "Success") yield* Deferred.succeed(r.done, result.value)
        else
          yield* Deferred.fail(
            r.done,
            new PassFailed({
              message:
                Cause.squash(result.cause) instanceof Error
                  ? (Cause.squash(result.cause) as Error).message
                  : String(Cause.squash(result.cause))
            })
          )
      }
    })
  )

  /** Asks for a pass soon (fire and forget). */
  const trigger = (reason: string) => Queue.offer(requests, { reason }).pipe(Effect.asVoid)

  /** Asks for a pass and waits for it (the API's operations). */
  const passNow = (reason: string) =>
    Effect.gen(function* () {
      const done = yield* Deferred.make<PassSummary, PassFailed>()
      yield* Queue.offer(requests, { reason, done })
      return yield* Deferred.await(done)
    })

  const timer = Effect.forever(Effect.sleep(config.interval).pipe(Effect.andThen(trigger("timer"))))

  /** podman events, debounced into passes; re-subscribed when the stream ends or fails. */
  const eventsLoop = runtime.events.pipe(
    Stream.filter((e) => e.type === "container" && healingEvents.has(e.action)),
    Stream.debounce(config.debounce),
    Stream.runForEach((e) => trigger(`event ${e.action} ${e.name ?? e.id ?? ""}`.trim())),
    Effect.catch((e) => Effect.logWarning(`podman events: ${e.message}`)),
    Effect.andThen(Effect.logDebug("podman event stream ended; reconnecting")),
    Effect.repeat(Schedule.spaced(Duration.seconds(1)))
  )

  /** Runs each due health check; a changed verdict asks for a pass (a dependant may start). */
  const healthLoop = Effect.forever(
    Effect.gen(function* () {
      yield* Effect.sleep(config.healthTick)
      const catalog = yield* Ref.get(lastCatalog)
      const summary = yield* Ref.get(lastPass)
      if (catalog === undefined || summary === undefined) return
      const snapshot = yield* runtime.observe.pipe(Effect.option)
      if (snapshot._tag === "None") return
      const now = yield* Clock.currentTimeMillis
      const desiredByName = new Map(
        catalog.apps.flatMap((a) => a.manifest.containers.map((c) => [c.name, c] as const))
      )
      let changed = false
      for (const c of snapshot.value.containers) {
        const manifest = desiredByName.get(c.name)
        if (c.state !== "running" || manifest?.health === undefined) continue
        const policy = policyOf({ spec: { health: manifest.health } } as Desired.DesiredContainer)!
        const previous = yield* health.get(c.name)
        const due =
          previous === undefined ||
          previous.startedAtMs !== (c.startedAtMs ?? 0) ||
          now - previous.checkedAtMs >=
            (previous.status === "healthy" ? policy.intervalMs : Math.min(policy.intervalMs, 5_000))
        if (!due) continue
        const record = yield* checkNow(c, policy).pipe(Effect.option)
        if (record._tag === "Some" && record.value.status !== previous?.status) {
          changed = true
          yield* Effect.logInfo(
            `health ${c.name}: ${record.value.status}${record.value.reason === "" ? "" : ` (${record.value.reason})`}`
          )
        }
      }
      if (changed) yield* trigger("health")
    })
  )

  /** Forks the loops into the current scope and asks for the boot pass. */
  const start = Effect.gen(function* () {
    yield* Effect.forkScoped(worker)
    yield* trigger("boot")
    yield* Effect.forkScoped(timer)
    if (config.events) yield* Effect.forkScoped(eventsLoop)
    yield* Effect.forkScoped(healthLoop)
  })

  return {
    start,
    trigger,
    passNow,
    lastPass: Ref.get(lastPass),
    passes: Ref.get(passes),
    catalog: catalogNow
  }
})

export type Daemon = Effect.Success<ReturnType<typeof make>>
