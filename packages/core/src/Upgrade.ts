/**
 * App upgrades as a change of Desired: a persisted record per app says which image each of its
 * containers runs instead of its manifest's (the new one while the upgrade is pending or once
 * committed, the previous one after a rollback), and `Desired.make` applies it, so the plan
 * recreates the container (its spec hash changes with the image). This module holds the pure
 * parts: the record's shape, the overrides it implies, which containers an upgrade moves to
 * which image, and the health gate's verdict. Running an upgrade (pull, pass, wait, decide) is
 * the engine's `Upgrade` module.
 */
import * as Schema from "effect/Schema"

/**
 * - `pending`: the containers were moved to the new image and its health gate has not decided yet
 *   (a daemon that stops here resumes the gate at its next start);
 * - `committed`: the new image passed its gate;
 * - `failed`: it did not, and the app went back to its previous image by itself;
 * - `rolled-back`: the user went back to the previous image.
 */
export const UpgradeState = Schema.Literals(["pending", "committed", "failed", "rolled-back"])
export type UpgradeState = typeof UpgradeState.Type

export const ImageChange = Schema.Struct({
  container: Schema.String,
  /** The image it ran before the upgrade: kept on the node, never removed, for a rollback. */
  from: Schema.String,
  to: Schema.String
})
export type ImageChange = typeof ImageChange.Type

export const UpgradeRecord = Schema.Struct({
  app: Schema.String,
  state: UpgradeState,
  changes: Schema.Array(ImageChange),
  /**
   * The image each container runs instead of its manifest's, by container name: what Desired
   * applies. Empty once an upgrade to the manifest's own images is committed, so a later catalog
   * update reaches the app as before.
   */
  images: Schema.Record(Schema.String, Schema.String),
  /** Why it is in this state, in words (the failed health check's output, …). */
  reason: Schema.String,
  startedAtMs: Schema.Number,
  updatedAtMs: Schema.Number
})
export type UpgradeRecord = typeof UpgradeRecord.Type

/** Every app's latest upgrade, by app id: the content of `<state-dir>/upgrades.json`. */
export const UpgradeRecords = Schema.Record(Schema.String, UpgradeRecord)
export type UpgradeRecords = typeof UpgradeRecords.Type

/** Images to run instead of the manifests', by app id, then container name. */
export type ImageOverrides = Readonly<Record<string, Readonly<Record<string, string>>>>

/** What Desired applies for these records. */
export const overridesOf = (records: UpgradeRecords): ImageOverrides => {
  const out: Record<string, Record<string, string>> = {}
  for (const [app, r] of Object.entries(records)) {
    if (Object.keys(r.images).length > 0) out[app] = { ...r.images }
  }
  return out
}

/** The manifest's rule for an image reference: fully qualified and pinned. Undefined when fine. */
export const imageRefProblem = (ref: string): string | undefined => {
  if (!/^[a-z0-9.-]+(:[0-9]+)?\/[a-z0-9._/-]+(:[A-Za-z0-9._-]+)?(@sha256:[a-f0-9]{64})?$/.test(ref))
    return `expected a fully qualified image reference (registry/name:tag[@sha256:...]), got "${ref}"`
  if (!ref.includes("@") && !/:[A-Za-z0-9._-]+$/.test(ref.split("/").pop() ?? ""))
    return `expected a pinned tag or digest, not an implicit latest: "${ref}"`
  return undefined
}

/** One container of the app, as an upgrade sees it. */
export interface UpgradeCandidate {
  readonly container: string
  /** The manifest's image (or built image) for it. */
  readonly manifestImage: string
  /** The image its container runs now; undefined when it does not exist. */
  readonly runningImage: string | undefined
}

/**
 * Which containers move to which image: to `image` when given (the one container named, or the
 * app's only container), else each container to its manifest's image where it runs another.
 * An empty list means nothing to do; a string is why the request cannot be done.
 */
export const changesFor = (
  app: string,
  candidates: ReadonlyArray<UpgradeCandidate>,
  request: { readonly image?: string; readonly container?: string }
): ReadonlyArray<ImageChange> | string => {
  let chosen = candidates
  if (request.container !== undefined) {
    chosen = candidates.filter((c) => c.container === request.container)
    if (chosen.length === 0)
      return `app ${app} has no container ${request.container} (it has ${candidates.map((c) => c.container).join(", ")})`
  }
  if (request.image !== undefined) {
    const problem = imageRefProblem(request.image)
    if (problem !== undefined) return `image: ${problem}`
    if (chosen.length !== 1)
      return `app ${app} has ${chosen.length} containers (${chosen.map((c) => c.container).join(", ")}): name the one to upgrade with --container`
  }
  const missing = chosen.find((c) => c.runningImage === undefined)
  if (missing !== undefined)
    return `container ${missing.container} does not exist yet: wait until the app runs, then upgrade it`
  return chosen.flatMap((c) => {
    const to = request.image ?? c.manifestImage
    return c.runningImage === to ? [] : [{ container: c.container, from: c.runningImage!, to }]
  })
}

/** What the gate knows about one upgraded container at one moment. */
export interface GateObservation {
  readonly container: string
  readonly image: string
  /** Undefined when the container does not exist (yet). */
  readonly state?: string
  readonly exitCode?: number
  readonly startedAtMs?: number
  /** The engine's verdict for this start; undefined while none (or no check is declared). */
  readonly health?: { readonly status: "healthy" | "unhealthy" | "starting"; readonly reason: string }
  /** Whether the manifest declares a health check. */
  readonly hasCheck: boolean
}

export interface GateInput {
  readonly nowMs: number
  /** When the gate gives up on a container that is neither healthy nor failed. */
  readonly deadlineMs: number
  /** How long a container without a health check must run, unrestarted, to count as healthy. */
  readonly settleMs: number
  readonly changes: ReadonlyArray<ImageChange>
  readonly observed: ReadonlyArray<GateObservation>
  /** The first start seen on the new image, per container: a later start means it crashed. */
  readonly firstStartMs: ReadonlyMap<string, number>
}

export type GateVerdict =
  | { readonly _tag: "Healthy"; readonly reason: string }
  | { readonly _tag: "Unhealthy"; readonly reason: string }
  | { readonly _tag: "Waiting"; readonly reason: string }

/**
 * The health gate of an upgrade, from one observation. Pure. Every changed container must run
 * its new image and be healthy: by its manifest's check (the engine's verdict, which counts
 * failures in the start period and below `retries` as progress), or, without a check, by running
 * `settleMs` without exiting or restarting. It fails at once on a container that exited,
 * restarted (a crash the reconciler healed), or was judged unhealthy, and at the deadline.
 */
export const judgeGate = (input: GateInput): GateVerdict => {
  const waiting: Array<string> = []
  const healthy: Array<string> = []
  for (const change of input.changes) {
    const o = input.observed.find((x) => x.container === change.container)
    const name = change.container
    if (o === undefined || o.state === undefined) {
      waiting.push(`${name} does not exist yet`)
      continue
    }
    if (o.image !== change.to) {
      waiting.push(`${name} still runs ${o.image}`)
      continue
    }
    const first = input.firstStartMs.get(name)
    if (o.state === "exited" || o.state === "stopped" || (o.state !== "running" && first !== undefined)) {
      return {
        _tag: "Unhealthy",
        reason: `${name} ${o.state === "running" ? "stopped" : o.state} on ${change.to}${o.exitCode !== undefined ? ` with exit code ${o.exitCode}` : ""}`
      }
    }
    if (o.state !== "running" || o.startedAtMs === undefined) {
      waiting.push(`${name} is ${o.state}`)
      continue
    }
    if (first !== undefined && o.startedAtMs !== first) {
      return { _tag: "Unhealthy", reason: `${name} exited and was restarted on ${change.to}` }
    }
    if (o.hasCheck) {
      if (o.health?.status === "healthy") {
        healthy.push(`${name} passed its health check`)
        continue
      }
      if (o.health?.status === "unhealthy") {
        return { _tag: "Unhealthy", reason: `${name} on ${change.to}: ${o.health.reason}` }
      }
      waiting.push(`${name}: ${o.health?.reason ?? "no health check has run yet"}`)
      continue
    }
    const ranMs = input.nowMs - o.startedAtMs
    if (ranMs >= input.settleMs) {
      healthy.push(`${name} declares no health check and ran ${Math.round(ranMs / 1000)} s without exiting`)
      continue
    }
    waiting.push(
      `${name} declares no health check: running, settling for ${Math.round(input.settleMs / 1000)} s`
    )
  }
  if (waiting.length === 0) return { _tag: "Healthy", reason: healthy.join("; ") }
  if (input.nowMs >= input.deadlineMs) {
    return { _tag: "Unhealthy", reason: `not healthy in time: ${waiting.join("; ")}` }
  }
  return { _tag: "Waiting", reason: waiting.join("; ") }
}

/**
 * How long the gate waits at most for one container: its start period, then `retries` checks one
 * interval apart (each up to its timeout), plus `graceMs` for the recreate and the first start.
 * Without a check: the settle time plus the grace.
 */
export const gateBudgetMs = (
  health:
    | {
        readonly startPeriodMs: number
        readonly intervalMs: number
        readonly timeoutMs: number
        readonly retries: number
      }
    | undefined,
  settleMs: number,
  graceMs: number
): number =>
  health === undefined
    ? settleMs + graceMs
    : health.startPeriodMs + (health.retries + 1) * (health.intervalMs + health.timeoutMs) + graceMs
