/**
 * Crash backoff: the reconciler's memory of containers that keep dying. The first crash is
 * healed at once (a killed container is back in about a second); each further crash within
 * the reset period waits twice as long, from the manifest's `backoffInitial` up to its
 * `backoffMax`; running `resetAfter` without a crash forgets the history. Pure: the daemon keeps
 * the state and hands the plan `Observed.backoff`, so the plan waits with the reason.
 */
import type * as Desired from "@archy/core/Desired"
import { durationMs } from "@archy/core/Manifest"
import type { Backoff, ObservedContainer } from "@archy/core/Observed"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"

export interface CrashRecord {
  /** Crashes in a row (without a stable run in between). */
  readonly crashes: number
  readonly lastExitCode?: number
  /** The start whose exit was counted, so one exit is never counted twice. */
  readonly countedStartMs: number
  readonly untilMs: number
}

export type CrashState = ReadonlyMap<string, CrashRecord>

export interface BackoffPolicy {
  readonly initialMs: number
  readonly maxMs: number
  readonly resetAfterMs: number
}

export const policyOf = (c: Desired.DesiredContainer): BackoffPolicy => ({
  initialMs: durationMs(c.restart?.backoffInitial, 10_000),
  maxMs: durationMs(c.restart?.backoffMax, 300_000),
  resetAfterMs: durationMs(c.restart?.resetAfter, 600_000)
})

/** The wait before restarting after the n-th crash in a row: 0, initial, 2x initial, … max. */
export const delayMs = (crashes: number, policy: BackoffPolicy): number =>
  crashes <= 1 ? 0 : Math.min(policy.initialMs * 2 ** (crashes - 2), policy.maxMs)

/** Folds one observation of the node into the crash state. */
export const observeCrashes = (
  state: CrashState,
  desired: Desired.Desired,
  containers: ReadonlyArray<ObservedContainer>,
  nowMs: number
): CrashState => {
  const next = new Map(state)
  const byName = new Map(containers.map((c) => [c.name, c]))
  for (const app of desired.apps) {
    for (const want of app.containers) {
      const policy = policyOf(want)
      const c = byName.get(want.name)
      const record = next.get(want.name)
      if (c === undefined || !want.shouldRun) {
        // Removed or stopped on purpose: not a crash; the history stays until a stable run.
        continue
      }
      if (c.state === "running") {
        if (
          record !== undefined &&
          c.startedAtMs !== undefined &&
          nowMs - c.startedAtMs >= policy.resetAfterMs
        ) {
          next.delete(want.name)
        }
        continue
      }
      const exited = c.state === "exited" || c.state === "stopped"
      if (!exited || c.startedAtMs === undefined || record?.countedStartMs === c.startedAtMs) continue
      const crashes = (record?.crashes ?? 0) + 1
      next.set(want.name, {
        crashes,
        ...(c.exitCode !== undefined ? { lastExitCode: c.exitCode } : {}),
        countedStartMs: c.startedAtMs,
        untilMs: nowMs + delayMs(crashes, policy)
      })
    }
  }
  return next
}

/** What the plan needs: the containers still backing off, with the reason in words. */
export const toBackoff = (state: CrashState, nowMs: number): ReadonlyArray<Backoff> =>
  [...state]
    .filter(([, r]) => r.untilMs > nowMs)
    .map(([container, r]) => ({
      container,
      untilMs: r.untilMs,
      reason: `${r.crashes} crashes in a row${r.lastExitCode !== undefined ? `, last exit code ${r.lastExitCode}` : ""}`
    }))

/**
 * The daemon's crash memory as a service: each observation is folded in and the containers
 * still backing off come back for the plan. Absent (a one-shot CLI pass), nothing backs off.
 */
export class CrashMemory extends Context.Service<
  CrashMemory,
  {
    readonly observe: (
      desired: Desired.Desired,
      containers: ReadonlyArray<ObservedContainer>,
      nowMs: number
    ) => Effect.Effect<ReadonlyArray<Backoff>>
    readonly state: Effect.Effect<CrashState>
  }
>()("archy/engine/CrashMemory") {
  static readonly layer = Layer.effect(
    CrashMemory,
    Effect.gen(function* () {
      const ref = yield* Ref.make<CrashState>(new Map())
      return CrashMemory.of({
        observe: (desired, containers, nowMs) =>
          Ref.updateAndGet(ref, (s) => observeCrashes(s, desired, containers, nowMs)).pipe(
            Effect.map((s) => toBackoff(s, nowMs))
          ),
        state: Ref.get(ref)
      })
    })
  )
}
