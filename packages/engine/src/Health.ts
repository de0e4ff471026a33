/**
 * Container health, judged by us: podman 4.x without systemd runs no health timers, so the
 * engine runs each manifest's check itself (`PodmanRuntime.healthcheck`) and keeps the verdicts
 * in a `HealthBook`. A failing check inside the start period, or before `retries` failures in a
 * row, counts as progress ("starting"), not failure: bitcoind loading its block index is busy,
 * not broken. The plan sees the verdicts as `ObservedContainer.health` and gates dependants on
 * them.
 */
import type * as Desired from "@archy/core/Desired"
import { durationMs } from "@archy/core/Manifest"
import type { ObservedContainer } from "@archy/core/Observed"
import { PodmanRuntime } from "@archy/podman/PodmanRuntime"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"

export type HealthStatus = "healthy" | "unhealthy" | "starting"

export interface HealthRecord {
  readonly status: HealthStatus
  /** Why, in words: the check's output when it fails. */
  readonly reason: string
  readonly checkedAtMs: number
  /** Failed checks in a row. */
  readonly failures: number
  /** The container start this verdict belongs to: a restart starts over. */
  readonly startedAtMs: number
}

export interface HealthPolicy {
  readonly startPeriodMs: number
  readonly retries: number
  readonly intervalMs: number
}

export const policyOf = (c: Desired.DesiredContainer): HealthPolicy | undefined =>
  c.spec.health === undefined
    ? undefined
    : {
        startPeriodMs: durationMs(c.spec.health.startPeriod, 0),
        retries: c.spec.health.retries ?? 3,
        intervalMs: durationMs(c.spec.health.interval, 30_000)
      }

/** The next verdict from the previous one and a check's result. Pure. */
export const judge = (
  previous: HealthRecord | undefined,
  result: { readonly healthy: boolean; readonly output: string },
  at: { readonly nowMs: number; readonly startedAtMs: number },
  policy: HealthPolicy
): HealthRecord => {
  const base = previous !== undefined && previous.startedAtMs === at.startedAtMs ? previous : undefined
  if (result.healthy) {
    return { status: "healthy", reason: "", checkedAtMs: at.nowMs, failures: 0, startedAtMs: at.startedAtMs }
  }
  const failures = (base?.failures ?? 0) + 1
  const inStartPeriod = at.nowMs - at.startedAtMs < policy.startPeriodMs
  const output = result.output.trim().split("\n").slice(-3).join(" ").slice(0, 300)
  const status: HealthStatus = inStartPeriod || failures < policy.retries ? "starting" : "unhealthy"
  return {
    status,
    reason:
      status === "starting"
        ? `health check failing (${failures} of ${policy.retries}${inStartPeriod ? ", in the start period" : ""})${output === "" ? "" : `: ${output}`}`
        : `health check failed ${failures} times${output === "" ? "" : `: ${output}`}`,
    checkedAtMs: at.nowMs,
    failures,
    startedAtMs: at.startedAtMs
  }
}

export class HealthBook extends Context.Service<
  HealthBook,
  {
    readonly get: (container: string) => Effect.Effect<HealthRecord | undefined>
    readonly all: Effect.Effect<ReadonlyMap<string, HealthRecord>>
    readonly set: (container: string, record: HealthRecord) => Effect.Effect<void>
  }
>()("archy/engine/HealthBook") {
  static readonly layer = Layer.effect(
    HealthBook,
    Effect.gen(function* () {
      const book = yield* Ref.make(new Map<string, HealthRecord>())
      return HealthBook.of({
        get: (container) => Effect.map(Ref.get(book), (m) => m.get(container)),
        all: Ref.get(book),
        set: (container, record) => Ref.update(book, (m) => new Map(m).set(container, record))
      })
    })
  )
}

/** Our verdicts over podman's containers (a verdict from an earlier start is ignored). */
export const overlayHealth = (
  containers: ReadonlyArray<ObservedContainer>,
  book: ReadonlyMap<string, HealthRecord>
): ReadonlyArray<ObservedContainer> =>
  containers.map((c) => {
    const r = book.get(c.name)
    if (r === undefined || c.state !== "running" || r.startedAtMs !== (c.startedAtMs ?? 0)) return c
    return { ...c, health: r.status }
  })

/** Runs one container's check now and records the verdict. */
export const checkNow = Effect.fn("Health.check")(function* (
  container: ObservedContainer,
  policy: HealthPolicy
) {
  const runtime = yield* PodmanRuntime
  const book = yield* HealthBook
  const result = yield* runtime.healthcheck(container.name)
  const record = judge(
    yield* book.get(container.name),
    result,
    { nowMs: yield* Clock.currentTimeMillis, startedAtMs: container.startedAtMs ?? 0 },
    policy
  )
  yield* book.set(container.name, record)
  return record
})

/**
 * Before planning: check the running containers that a waiting dependant gates on with
 * `healthy` and that have no passing verdict yet, so a dependant starts in the same pass its
 * dependency becomes healthy instead of one timer later.
 */
export const checkGates = Effect.fn("Health.checkGates")(function* (
  desired: Desired.Desired,
  containers: ReadonlyArray<ObservedContainer>
) {
  const byName = new Map(containers.map((c) => [c.name, c]))
  const wanted = new Map(desired.apps.flatMap((a) => a.containers.map((c) => [c.name, c] as const)))
  const toCheck = new Set<string>()
  for (const app of desired.apps) {
    for (const c of app.containers) {
      if (!c.shouldRun || byName.get(c.name)?.state === "running") continue
      for (const gate of c.waitsFor) {
        const dep = byName.get(gate.container)
        if (gate.condition === "healthy" && dep?.state === "running" && dep.health !== "healthy") {
          toCheck.add(gate.container)
        }
      }
    }
  }
  for (const name of toCheck) {
    const policy = wanted.get(name) !== undefined ? policyOf(wanted.get(name)!) : undefined
    // A dependency without a health check can never be proven healthy: it counts as healthy
    // once running (the manifest check refuses nothing here; the gate would otherwise hang).
    if (policy === undefined) {
      const book = yield* HealthBook
      const dep = byName.get(name)!
      yield* book.set(name, {
        status: "healthy",
        reason: "no health check declared",
        checkedAtMs: yield* Clock.currentTimeMillis,
        failures: 0,
        startedAtMs: dep.startedAtMs ?? 0
      })
      continue
    }
    yield* checkNow(byName.get(name)!, policy).pipe(Effect.ignore)
  }
})
