/**
 * Running an app upgrade: check the request, pull the new image (a reference that cannot be
 * pulled fails here, before anything is touched), record the upgrade as pending (Desired now runs
 * the new image), let a pass recreate the containers, hold them to the health gate
 * (`Upgrade.judgeGate`), then commit, or record the failure and let a pass bring the previous
 * image back. A rollback on demand records the previous images and passes. The record changes
 * happen under the app's lock; the recreates are the plan's, run by the caller's `pass` (the
 * daemon's pass worker, or a pass of the CLI's own), which takes the app's lock per action.
 *
 * A process stopped between "pending" and the verdict leaves the record pending: `resume` runs
 * the gate again on whatever the next start finds, and commits or rolls back.
 */
import type { Catalog } from "@archy/core/Catalog"
import * as Desired from "@archy/core/Desired"
import { durationMs } from "@archy/core/Manifest"
import { labels, type ObservedContainer } from "@archy/core/Observed"
import * as Upgrade from "@archy/core/Upgrade"
import { PodmanRuntime } from "@archy/podman/PodmanRuntime"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { AppLocks } from "./AppLocks.ts"
import { checkNow, HealthBook, policyOf } from "./Health.ts"
import type { ActionReport } from "./Reconciler.ts"
import { UpgradeStore } from "./UpgradeStore.ts"

/** A request that cannot be done (`invalid`), or an upgrade that could not start (`failed`). */
export class UpgradeError extends Data.TaggedError("UpgradeError")<{
  readonly kind: "invalid" | "failed"
  readonly message: string
}> {}

export interface UpgradeContext<E> {
  readonly catalog: Catalog
  readonly selection: Desired.Selection
  readonly node: Desired.NodeConfig
  /** Runs a reconcile pass (or passes until settled) and gives what it did. */
  readonly pass: (reason: string) => Effect.Effect<ReadonlyArray<ActionReport>, E>
  /** How long a container without a health check must run to count as healthy (default 5 s). */
  readonly settleMs?: number
  /** Time allowed for the recreate and first start, on top of the health budget (default 30 s). */
  readonly graceMs?: number
  /** How long a rollback waits for the previous image to run again (default 60 s). */
  readonly rollbackWaitMs?: number
}

export interface UpgradeResult {
  readonly app: string
  /** `unchanged`: the containers already run the requested images. */
  readonly outcome: "committed" | "failed" | "rolled-back" | "unchanged"
  readonly changes: ReadonlyArray<Upgrade.ImageChange>
  readonly reason: string
  /** What the passes did to this app's containers. */
  readonly actions: ReadonlyArray<ActionReport>
}

export const defaultSettleMs = 5_000
const defaultGraceMs = 30_000
const defaultRollbackWaitMs = 60_000
const pollMs = 500

const invalid = (message: string) => new UpgradeError({ kind: "invalid", message })

const withAppLock = <A, E, R>(app: string, effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.serviceOption(AppLocks), (locks) =>
    Option.isSome(locks) ? locks.value.withApps([app], effect) : effect
  )

/** The app's desired containers by name, on their manifests' images (no overrides). */
const manifestContainers = (ctx: UpgradeContext<unknown>, app: string) => {
  const desired = Desired.make({
    catalog: ctx.catalog,
    node: ctx.node,
    selection: { installed: [app], stopped: [] },
    secrets: new Map()
  })
  return desired.apps.find((a) => a.id === app)?.containers ?? []
}

const oursOf = (containers: ReadonlyArray<ObservedContainer>, app: string) =>
  new Map(
    containers
      .filter((c) => c.labels[labels.app] === app && c.labels[labels.container] !== undefined)
      .map((c) => [c.labels[labels.container]!, c] as const)
  )

/** Drops overrides that name the manifest's own image: Desired needs none for them. */
const normalize = (images: Record<string, string>, wanted: ReadonlyArray<Desired.DesiredContainer>) =>
  Object.fromEntries(
    Object.entries(images).filter(([name, ref]) => wanted.find((w) => w.name === name)?.spec.image !== ref)
  )

const reportsFor = (reports: ReadonlyArray<ActionReport>, names: ReadonlySet<string>) =>
  reports.filter((r) => names.has(r.action.target.replace(/^container:/, "")))

const runPass = <E>(ctx: UpgradeContext<E>, reason: string) =>
  ctx.pass(reason).pipe(
    Effect.mapError(
      (e) =>
        new UpgradeError({
          kind: "failed",
          message: `the pass for ${reason} failed: ${e instanceof Error ? e.message : String(e)}`
        })
    )
  )

/**
 * Holds the changed containers to the health gate until it decides. Runs each manifest's check
 * itself when one is due (into the shared HealthBook, so the daemon's checker and the gate count
 * the same failures).
 */
const gate = Effect.fn("Upgrade.gate")(function* (
  ctx: UpgradeContext<unknown>,
  app: string,
  changes: ReadonlyArray<Upgrade.ImageChange>
) {
  const runtime = yield* PodmanRuntime
  const book = yield* HealthBook
  const wanted = manifestContainers(ctx, app)
  const settleMs = ctx.settleMs ?? defaultSettleMs
  const budgets = changes.map((c) => {
    const w = wanted.find((x) => x.name === c.container)
    const policy = w === undefined ? undefined : policyOf(w)
    const timeoutMs = durationMs(w?.spec.health?.timeout, 30_000)
    return Upgrade.gateBudgetMs(
      policy === undefined ? undefined : { ...policy, timeoutMs },
      settleMs,
      ctx.graceMs ?? defaultGraceMs
    )
  })
  const deadlineMs = (yield* Clock.currentTimeMillis) + Math.max(...budgets)
  const firstStartMs = new Map<string, number>()
  let lastProblem = ""
  for (;;) {
    const nowMs = yield* Clock.currentTimeMillis
    const snapshot = yield* Effect.result(runtime.observe)
    if (snapshot._tag === "Failure") {
      lastProblem = snapshot.failure.message
      if (nowMs >= deadlineMs)
        return { _tag: "Unhealthy", reason: `podman could not be asked: ${lastProblem}` } as const
      yield* Effect.sleep(pollMs)
      continue
    }
    const ours = oursOf(snapshot.success.containers, app)
    const observed: Array<Upgrade.GateObservation> = []
    for (const change of changes) {
      const c = ours.get(change.container)
      const w = wanted.find((x) => x.name === change.container)
      const policy = w === undefined ? undefined : policyOf(w)
      if (c === undefined) {
        observed.push({ container: change.container, image: "", hasCheck: policy !== undefined })
        continue
      }
      const onNewImage = c.image === change.to
      if (onNewImage && c.state === "running" && c.startedAtMs !== undefined && !firstStartMs.has(c.name))
        firstStartMs.set(c.name, c.startedAtMs)
      let health: Upgrade.GateObservation["health"]
      if (onNewImage && c.state === "running" && policy !== undefined) {
        const previous = yield* book.get(c.name)
        const current = previous !== undefined && previous.startedAtMs === (c.startedAtMs ?? 0)
        const record =
          current && nowMs - previous.checkedAtMs < policy.intervalMs
            ? previous
            : yield* checkNow(c, policy).pipe(Effect.orElseSucceed(() => (current ? previous : undefined)))
        if (record !== undefined) health = { status: record.status, reason: record.reason }
      }
      observed.push({
        container: change.container,
        image: c.image,
        state: c.state,
        ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
        ...(c.startedAtMs !== undefined ? { startedAtMs: c.startedAtMs } : {}),
        ...(health !== undefined ? { health } : {}),
        hasCheck: policy !== undefined
      })
    }
    const verdict = Upgrade.judgeGate({ nowMs, deadlineMs, settleMs, changes, observed, firstStartMs })
    if (verdict._tag !== "Waiting") return verdict
    yield* Effect.sleep(pollMs)
  }
})

/** Waits (bounded) until the changed containers run their `from` images again. */
const waitBack = Effect.fn("Upgrade.waitBack")(function* (
  ctx: UpgradeContext<unknown>,
  app: string,
  changes: ReadonlyArray<Upgrade.ImageChange>
) {
  const runtime = yield* PodmanRuntime
  const deadline = (yield* Clock.currentTimeMillis) + (ctx.rollbackWaitMs ?? defaultRollbackWaitMs)
  let last = ""
  for (;;) {
    const snapshot = yield* Effect.result(runtime.observe)
    if (snapshot._tag === "Success") {
      const ours = oursOf(snapshot.success.containers, app)
      const behind = changes.filter((c) => {
        const o = ours.get(c.container)
        return o === undefined || o.image !== c.from || o.state !== "running"
      })
      if (behind.length === 0) return undefined
      last = behind
        .map((c) => {
          const o = ours.get(c.container)
          return `${c.container} ${o === undefined ? "does not exist" : o.image !== c.from ? `still runs ${o.image}` : `is ${o.state}`}`
        })
        .join("; ")
    } else last = snapshot.failure.message
    if ((yield* Clock.currentTimeMillis) >= deadline) return last
    yield* Effect.sleep(pollMs)
  }
})

/** Ends a gated upgrade: commit, or record the failure and bring the previous images back. */
const decide = Effect.fn("Upgrade.decide")(function* <E>(
  ctx: UpgradeContext<E>,
  record: Upgrade.UpgradeRecord,
  reports: Array<ActionReport>
) {
  const store = yield* UpgradeStore
  const app = record.app
  const names = new Set(manifestContainers(ctx, app).map((c) => c.name))
  // A recreate or start of a changed container that failed in the pass needs no waiting.
  const changed = new Set(record.changes.map((c) => `container:${c.container}`))
  const failedAction = reports.find((r) => r.outcome._tag === "Failed" && changed.has(r.action.target))
  const verdict: Upgrade.GateVerdict =
    failedAction !== undefined && failedAction.outcome._tag === "Failed"
      ? {
          _tag: "Unhealthy",
          reason: `${failedAction.action._tag.toLowerCase()} of ${failedAction.action.target.replace(/^container:/, "")} failed: ${failedAction.outcome.error}`
        }
      : yield* gate(ctx, app, record.changes)
  const wanted = manifestContainers(ctx, app)
  const nowMs = yield* Clock.currentTimeMillis
  if (verdict._tag === "Healthy") {
    yield* withAppLock(
      app,
      store.set({
        ...record,
        state: "committed",
        images: normalize({ ...record.images }, wanted),
        reason: verdict.reason,
        updatedAtMs: nowMs
      })
    ).pipe(Effect.mapError((e) => new UpgradeError({ kind: "failed", message: e.message })))
    return {
      app,
      outcome: "committed",
      changes: record.changes,
      reason: verdict.reason,
      actions: reports
    } satisfies UpgradeResult
  }
  const back = { ...record.images }
  for (const c of record.changes) back[c.container] = c.from
  const failed: Upgrade.UpgradeRecord = {
    ...record,
    state: "failed",
    images: normalize(back, wanted),
    reason: `health gate failed: ${verdict.reason}; back on ${record.changes.map((c) => `${c.container} ${c.from}`).join(", ")}`,
    updatedAtMs: nowMs
  }
  yield* withAppLock(app, store.set(failed)).pipe(
    Effect.mapError((e) => new UpgradeError({ kind: "failed", message: e.message }))
  )
  reports.push(...reportsFor(yield* runPass(ctx, `rollback of ${app}`), names))
  const notBack = yield* waitBack(ctx, app, record.changes)
  return {
    app,
    outcome: "failed",
    changes: record.changes,
    reason: notBack === undefined ? failed.reason : `${failed.reason}; but not running yet: ${notBack}`,
    actions: reports
  } satisfies UpgradeResult
})

const mapStore = Effect.mapError(
  (e: { readonly message: string }) => new UpgradeError({ kind: "failed", message: e.message })
)

/** Checks an app can be upgraded or rolled back now. */
const checkApp = (ctx: UpgradeContext<unknown>, app: string) => {
  if (!ctx.catalog.apps.some((a) => a.manifest.id === app))
    return Effect.fail(invalid(`no app "${app}" in the catalog`))
  if (!ctx.selection.installed.includes(app)) return Effect.fail(invalid(`app ${app} is not installed`))
  if (ctx.selection.stopped.includes(app))
    return Effect.fail(invalid(`app ${app} is stopped: start it first, so its new image can prove itself`))
  return Effect.void
}

/**
 * Upgrades `app`: its containers to their manifests' images where they run others, or the one
 * named (or the only one) to `image`. Answers once the gate decided and, on failure, the previous
 * images run again.
 */
export const upgrade = Effect.fn("Upgrade.upgrade")(function* <E>(
  ctx: UpgradeContext<E>,
  request: { readonly app: string; readonly image?: string; readonly container?: string }
) {
  const app = request.app
  yield* checkApp(ctx, app)
  const runtime = yield* PodmanRuntime
  const store = yield* UpgradeStore
  const wanted = manifestContainers(ctx, app)
  const names = new Set(wanted.map((c) => c.name))

  const plan = Effect.gen(function* () {
    const previous = yield* store.get(app).pipe(mapStore)
    if (previous?.state === "pending")
      return yield* invalid(
        `an upgrade of ${app} is under way (${previous.changes.map((c) => `${c.container} to ${c.to}`).join(", ")})`
      )
    const snapshot = yield* runtime.observe.pipe(
      Effect.mapError((e) => new UpgradeError({ kind: "failed", message: e.message }))
    )
    const ours = oursOf(snapshot.containers, app)
    const changes = Upgrade.changesFor(
      app,
      wanted.map((w) => ({
        container: w.name,
        manifestImage: w.spec.image,
        runningImage: ours.get(w.name)?.image
      })),
      request
    )
    if (typeof changes === "string") return yield* invalid(changes)
    return { previous, changes, images: snapshot.images }
  })
  const first = yield* withAppLock(app, plan)
  if (first.changes.length === 0) {
    return {
      app,
      outcome: "unchanged",
      changes: [],
      reason: `already runs ${wanted
        .map((w) => w.name)
        .filter((n) => request.container === undefined || n === request.container)
        .join(", ")} on the requested image`,
      actions: []
    } satisfies UpgradeResult
  }
  // Pull before anything is touched: a reference that cannot be pulled changes nothing.
  const present = new Set(first.images.flatMap((i) => i.names))
  for (const ref of new Set(first.changes.map((c) => c.to))) {
    if (present.has(ref)) continue
    if (wanted.some((w) => w.source._tag === "Build" && w.source.ref === ref)) continue
    yield* runtime
      .apply({
        _tag: "PullImage",
        target: `image:${ref}`,
        cause: `upgrade of ${app} to ${ref}`,
        source: { _tag: "Registry", ref }
      })
      .pipe(
        Effect.mapError(
          (e) =>
            new UpgradeError({
              kind: "failed",
              message: `cannot pull ${ref}: ${e.message}; nothing was changed`
            })
        )
      )
  }
  const nowMs = yield* Clock.currentTimeMillis
  const record: Upgrade.UpgradeRecord = {
    app,
    state: "pending",
    changes: first.changes,
    images: normalize(
      {
        ...(first.previous?.images ?? {}),
        ...Object.fromEntries(first.changes.map((c) => [c.container, c.to]))
      },
      wanted
    ),
    reason: `waiting for the health gate of ${first.changes.map((c) => `${c.container} on ${c.to}`).join(", ")}`,
    startedAtMs: nowMs,
    updatedAtMs: nowMs
  }
  // Under the lock again: another upgrade may have begun while this one pulled.
  yield* withAppLock(
    app,
    Effect.gen(function* () {
      const now = yield* store.get(app).pipe(mapStore)
      if (now?.state === "pending") return yield* invalid(`an upgrade of ${app} is under way`)
      yield* store.set(record).pipe(mapStore)
    })
  )
  const reports = [...reportsFor(yield* runPass(ctx, `upgrade of ${app}`), names)]
  return yield* decide(ctx, record, reports)
})

/** Finishes an upgrade a stopped process left pending: the gate again, then commit or roll back. */
export const resume = Effect.fn("Upgrade.resume")(function* <E>(ctx: UpgradeContext<E>, app: string) {
  const store = yield* UpgradeStore
  const record = yield* store.get(app).pipe(mapStore)
  if (record?.state !== "pending") return undefined
  const reports = [
    ...reportsFor(
      yield* runPass(ctx, `resumed upgrade of ${app}`),
      new Set(record.changes.map((c) => c.container))
    )
  ]
  return yield* decide(ctx, record, reports)
})

/** Apps whose upgrade a stopped process left pending. */
export const pendingApps = Effect.gen(function* () {
  const store = yield* UpgradeStore
  const records = yield* store.all.pipe(mapStore)
  return Object.values(records)
    .filter((r) => r.state === "pending")
    .map((r) => r.app)
})

/** Goes back to the images `app` ran before its last upgrade. */
export const rollback = Effect.fn("Upgrade.rollback")(function* <E>(ctx: UpgradeContext<E>, app: string) {
  yield* checkApp(ctx, app)
  const store = yield* UpgradeStore
  const wanted = manifestContainers(ctx, app)
  const record = yield* withAppLock(
    app,
    Effect.gen(function* () {
      const last = yield* store.get(app).pipe(mapStore)
      if (last === undefined || last.changes.length === 0)
        return yield* invalid(`app ${app} has no upgrade to roll back`)
      if (last.state === "pending")
        return yield* invalid(
          `an upgrade of ${app} is under way; it goes back by itself if its health gate fails`
        )
      if (last.state !== "committed")
        return yield* invalid(
          `app ${app} already went back to ${last.changes.map((c) => `${c.container} ${c.from}`).join(", ")} (${last.state}: ${last.reason})`
        )
      const back = { ...last.images }
      for (const c of last.changes) back[c.container] = c.from
      const next: Upgrade.UpgradeRecord = {
        ...last,
        state: "rolled-back",
        images: normalize(back, wanted),
        reason: `rolled back on request to ${last.changes.map((c) => `${c.container} ${c.from}`).join(", ")}`,
        updatedAtMs: yield* Clock.currentTimeMillis
      }
      yield* store.set(next).pipe(mapStore)
      return next
    })
  )
  const names = new Set(wanted.map((c) => c.name))
  const actions = reportsFor(yield* runPass(ctx, `rollback of ${app}`), names)
  const notBack = yield* waitBack(ctx, app, record.changes)
  return {
    app,
    outcome: "rolled-back",
    changes: record.changes,
    reason: notBack === undefined ? record.reason : `${record.reason}; but not running yet: ${notBack}`,
    actions
  } satisfies UpgradeResult
})
