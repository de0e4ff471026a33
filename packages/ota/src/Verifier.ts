/**
 * The boot verifier. When the daemon starts with a pending marker, the new release must prove
 * itself within the deadline (90 s on a node): in one round, the web UI answers 200 through nginx,
 * the daemon's own API answers /healthz, and a reconcile pass of the new catalog is settled
 * (it had nothing left to do). Then it commits: previous recorded, older releases pruned, marker
 * removed. Otherwise it rolls back: the reason is written into the marker first, `current` goes
 * back to the previous release (its web UI and its apps catalog with it: the next passes plan
 * back to that Desired), the result is recorded, the marker removed, and the daemon restarted.
 *
 * The marker counts starts (`countBoot`, run before each start by the service's ExecStartPre): a
 * release whose daemon dies before a verdict, or cannot start at all, is rolled back unprobed after
 * `maxBoots` starts; a rollback that itself keeps dying is given up after two more: the marker is
 * removed, the result says `gave-up` and why, and the node stays where `current` is, reconciling
 * as usual, for a person to look at (`archy update status`).
 */
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import {
  type BootDecision,
  decideAtBoot,
  describeFailure,
  type PendingMarker,
  type ProbeFailure,
  toPrune
} from "./Decide.ts"
import type { Install, UpdateResult } from "./Install.ts"
import { get } from "./Probe.ts"
import { ServiceManager } from "./ServiceManager.ts"

export interface VerifierOptions {
  readonly webUiUrl: string
  /** The daemon's own API port on 127.0.0.1 (its /healthz). */
  readonly apiPort: number
  readonly timeout: Duration.Duration
  readonly maxBoots: number
  /** Time between probe rounds. */
  readonly pause: Duration.Duration
  /** One reconcile pass: `undefined` when it was settled, else why not. */
  readonly settledPass: Effect.Effect<string | undefined>
}

export const defaultWebUiUrl = "https://127.0.0.1/"
export const defaultVerifyTimeout = Duration.seconds(90)
export const defaultMaxBoots = 3

const probeTimeoutMs = 5_000

/** One round of the three probes; the failures (none: the release proved itself). */
export const probeRound = (options: VerifierOptions) =>
  Effect.gen(function* () {
    const failures: Array<ProbeFailure> = []
    const web = yield* get(options.webUiUrl, probeTimeoutMs)
    if (web.status !== 200)
      failures.push({
        probe: "web-ui",
        target: options.webUiUrl,
        ...(web.status !== undefined ? { status: web.status } : {}),
        error:
          web.error ??
          `expected HTTP 200${web.body ? `; the body began: ${web.body.slice(0, 120).replace(/\s+/g, " ")}` : ""}`
      })
    const healthUrl = `http://127.0.0.1:${options.apiPort}/healthz`
    const health = yield* get(healthUrl, probeTimeoutMs)
    if (health.status !== 200 || health.body?.trim() !== "ok")
      failures.push({
        probe: "daemon",
        target: healthUrl,
        ...(health.status !== undefined ? { status: health.status } : {}),
        error: health.error ?? "expected HTTP 200 ok"
      })
    const unsettled = yield* options.settledPass
    if (unsettled !== undefined) failures.push({ probe: "catalog", error: unsettled })
    return failures as ReadonlyArray<ProbeFailure>
  })

const now = Effect.map(DateTime.now, DateTime.formatIso)

/** Probes until a round passes or the deadline: undefined when it passed, else the last round's first failure. */
const prove = (options: VerifierOptions, marker: PendingMarker) =>
  Effect.gen(function* () {
    const started = yield* Clock.currentTimeMillis
    const deadline = started + Duration.toMillis(options.timeout)
    let last: ReadonlyArray<ProbeFailure> = []
    let round = 0
    while (true) {
      round++
      last = yield* probeRound(options)
      if (last.length === 0) {
        yield* Effect.logInfo(`update ${marker.from} -> ${marker.to}: verified in round ${round}`)
        return undefined
      }
      yield* Effect.logDebug(`update verification round ${round}: ${last.map(describeFailure).join("; ")}`)
      if ((yield* Clock.currentTimeMillis) + Duration.toMillis(options.pause) >= deadline) break
      yield* Effect.sleep(options.pause)
    }
    const first = last[0]!
    return {
      ...first,
      error: `${first.error} (still failing after ${Math.round(Duration.toMillis(options.timeout) / 1000)} s${last.length > 1 ? `; also ${last.slice(1).map(describeFailure).join("; ")}` : ""})`
    } satisfies ProbeFailure
  })

/**
 * Runs before every daemon start (`archy update boot`, from the unit's ExecStartPre through
 * image-recipe/archy-boot, with the previous release's archy: code known to start). Counts the
 * start in the marker, durably; past `maxBoots` starts of the new release without a verdict (its
 * daemon dies before deciding, or cannot start at all), it rolls back right here, without the new
 * release's code: the reason goes into the marker, `current` back to `from`, and the daemon that
 * starts next is the previous release's, which records the result.
 */
export const countBoot = (install: Install, maxBoots: number) =>
  Effect.gen(function* () {
    const found = yield* install.marker
    if (found === undefined) return { _tag: "NoUpdate" } as BootDecision
    const marker: PendingMarker = { ...found, boots: found.boots + 1 }
    yield* install.writeMarker(marker)
    const decision = decideAtBoot(marker, yield* install.current, { maxBoots })
    if (decision._tag === "RollBack" && (yield* install.hasRelease(marker.from))) {
      yield* install.writeMarker({ ...marker, rollback: decision.failure })
      yield* install.switchTo(marker.from)
    }
    return decision
  })

/**
 * Runs at every daemon start, after the API listens and the reconciler runs. Returns what it
 * decided (for the log and the tests); a rollback ends with a restart request.
 */
export const verifyAtBoot = (install: Install, options: VerifierOptions) =>
  Effect.gen(function* () {
    const marker = yield* install.marker
    if (marker === undefined) return { _tag: "NoUpdate" } as BootDecision
    const current = yield* install.current
    const decision = decideAtBoot(marker, current, { maxBoots: options.maxBoots })
    const services = yield* ServiceManager
    const record = (result: Omit<UpdateResult, "at">, previous: string | undefined) =>
      Effect.gen(function* () {
        const state = yield* install.state
        const p = previous ?? state.previous
        yield* install.writeState({
          ...(p !== undefined ? { previous: p } : {}),
          last: { ...result, at: yield* now }
        })
        yield* install.removeMarker
      })

    const rollBack = (failure: ProbeFailure) =>
      Effect.gen(function* () {
        yield* Effect.logError(
          `update ${marker.from} -> ${marker.to} failed: ${describeFailure(failure)}; rolling back`
        )
        if (!(yield* install.hasRelease(marker.from))) {
          yield* Effect.logError(
            `cannot roll back: ${install.releaseDir(marker.from)} is missing; staying on ${marker.to}`
          )
          return yield* record(
            {
              outcome: "gave-up",
              from: marker.from,
              to: marker.to,
              reason: `${describeFailure(failure)}; the previous release ${marker.from} is missing, so ${marker.to} stays`,
              failure
            },
            undefined
          )
        }
        // The reason first: killed after the switch, the next boot finishes this rollback.
        yield* install.writeMarker({ ...marker, rollback: failure })
        yield* install.switchTo(marker.from)
        yield* record({ outcome: "rolled-back", from: marker.from, to: marker.to, failure }, undefined)
        yield* services.restart(`rolled back ${marker.to} -> ${marker.from}`)
      })

    switch (decision._tag) {
      case "NoUpdate":
        break
      case "Interrupted":
        yield* Effect.logWarning(
          `update ${marker.from} -> ${marker.to} was interrupted before the switch; staying on ${marker.from}`
        )
        yield* record(
          {
            outcome: "interrupted",
            from: marker.from,
            to: marker.to,
            reason: "the apply stopped before current was switched"
          },
          undefined
        )
        break
      case "FinishRollback":
        yield* record(
          { outcome: "rolled-back", from: marker.from, to: marker.to, failure: decision.failure },
          undefined
        )
        break
      case "GiveUp":
        yield* Effect.logError(`update verification gave up: ${decision.reason}`)
        yield* record(
          { outcome: "gave-up", from: marker.from, to: marker.to, reason: decision.reason },
          undefined
        )
        break
      case "RollBack":
        yield* rollBack(decision.failure)
        break
      case "Verify": {
        const failure = yield* prove(options, marker)
        if (failure !== undefined) {
          yield* rollBack(failure)
          break
        }
        yield* record({ outcome: "committed", from: marker.from, to: marker.to }, marker.from)
        for (const old of toPrune(yield* install.releases, [marker.to, marker.from])) {
          yield* install.removeRelease(old)
          yield* Effect.logInfo(`pruned release ${old}`)
        }
        break
      }
    }
    return decision
  })
