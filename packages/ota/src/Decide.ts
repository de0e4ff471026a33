/**
 * The OTA's decisions, as plain functions of plain data: what a boot does with a pending
 * marker, whether probes passed, whether a release is newer, which releases to prune. No
 * Effect, no clock, no files: the updater and the verifier read the disk, call these, and act.
 */
import { compareVersions } from "@archy/release/Version"

/** Why a new release failed to prove itself: which probe, what it saw. */
export interface ProbeFailure {
  /** `web-ui` (through nginx), `daemon` (its own /healthz), `catalog` (a settled pass), `boot`. */
  readonly probe: "web-ui" | "daemon" | "catalog" | "boot"
  readonly target?: string
  /** The HTTP status code, when an answer came. */
  readonly status?: number
  readonly error: string
}

/**
 * Written before `current` moves to a new release and removed once that release committed or was
 * rolled back: while it exists, every start of the daemon verifies (or rolls back).
 */
export interface PendingMarker {
  readonly from: string
  readonly to: string
  /** ISO-8601: when the update was applied. */
  readonly at: string
  /** Daemon starts since the marker was written (each start counts itself first). */
  readonly boots: number
  /** Set once a rollback was decided, before `current` moves back: a crash then still finishes it. */
  readonly rollback?: ProbeFailure
}

/** What the daemon does at boot, from the marker (already counted) and where `current` points. */
export type BootDecision =
  | { readonly _tag: "NoUpdate" }
  /** The apply was killed after the marker, before the switch: still on `from`, nothing to verify. */
  | { readonly _tag: "Interrupted"; readonly marker: PendingMarker }
  /** A rollback was killed after `current` moved back: only its record and the marker remain to do. */
  | { readonly _tag: "FinishRollback"; readonly marker: PendingMarker; readonly failure: ProbeFailure }
  /** Probe the new release. */
  | { readonly _tag: "Verify"; readonly marker: PendingMarker }
  /** The new release's daemon started too often without a verdict (it crashes): roll back unprobed. */
  | { readonly _tag: "RollBack"; readonly marker: PendingMarker; readonly failure: ProbeFailure }
  /** Rolling back keeps failing too, or `current` is neither side: stop, stay, report. */
  | { readonly _tag: "GiveUp"; readonly marker: PendingMarker; readonly reason: string }

export interface BootLimits {
  /** Starts of the new release allowed to reach a verdict (3: one crash is not a verdict). */
  readonly maxBoots: number
}

/** Starts past `maxBoots` granted to a rollback itself before the verifier gives up. */
export const rollbackBootsAllowance = 2

export const decideAtBoot = (
  marker: PendingMarker | undefined,
  current: string | undefined,
  limits: BootLimits
): BootDecision => {
  if (marker === undefined) return { _tag: "NoUpdate" }
  if (marker.boots > limits.maxBoots + rollbackBootsAllowance)
    return {
      _tag: "GiveUp",
      marker,
      reason: `the daemon started ${marker.boots} times without finishing the verification or the rollback of ${marker.to}`
    }
  if (current === marker.from) {
    return marker.rollback !== undefined
      ? { _tag: "FinishRollback", marker, failure: marker.rollback }
      : { _tag: "Interrupted", marker }
  }
  if (current !== marker.to)
    return {
      _tag: "GiveUp",
      marker,
      reason: `current is ${current ?? "missing"}, neither ${marker.from} nor ${marker.to}`
    }
  if (marker.rollback !== undefined) return { _tag: "RollBack", marker, failure: marker.rollback }
  if (marker.boots > limits.maxBoots)
    return {
      _tag: "RollBack",
      marker,
      failure: {
        probe: "boot",
        error: `the daemon of ${marker.to} started ${marker.boots - 1} times without reaching a verdict`
      }
    }
  return { _tag: "Verify", marker }
}

/** One round of probes: all must pass in the same round. */
export interface ProbeRound {
  readonly failures: ReadonlyArray<ProbeFailure>
}

export const passed = (round: ProbeRound): boolean => round.failures.length === 0

/** One line for a failure: `web-ui https://127.0.0.1/: HTTP 500 (...)`. */
export const describeFailure = (f: ProbeFailure): string =>
  `${f.probe}${f.target !== undefined ? ` ${f.target}` : ""}: ${f.status !== undefined ? `HTTP ${f.status}, ` : ""}${f.error}`

/**
 * Release versions as directory names: letters, digits, `.`, `_`, `+`, `-`, starting with a letter
 * or digit, at most 64 characters; never `.` or `..` or a path.
 */
export const isVersion = (v: string): boolean =>
  /^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$/.test(v) && !v.includes("..")

/** Whether a fetched release should be offered: strictly newer than what runs (no downgrades by replay). */
export const isUpdate = (candidate: string, current: string | undefined): boolean => {
  if (current === undefined) return true
  try {
    return compareVersions(candidate, current) > 0
  } catch {
    // A `current` that is not a release version (installed by hand): any other release is an update.
    return candidate !== current
  }
}

/** The releases on disk to delete: all but the ones still needed. */
export const toPrune = (
  onDisk: ReadonlyArray<string>,
  keep: ReadonlyArray<string | undefined>
): ReadonlyArray<string> => {
  const kept = new Set(keep.filter((k): k is string => k !== undefined))
  return onDisk.filter((v) => !kept.has(v)).sort()
}
