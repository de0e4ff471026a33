/**
 * What the daemon can be asked to do: the operations behind the JSON-RPC methods, as one
 * service. The API module only speaks the protocol (auth, framing, errors) and calls these; the
 * daemon implements them with the reconciler, the per-app locks and the persisted selection.
 */
import { Action } from "@archy/core"
import type { ActionReport } from "@archy/engine/Reconciler"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"

/** One action of a plan or pass, as the API shows it (never a payload: nothing secret). */
export interface ActionView {
  readonly kind: string
  readonly target: string
  readonly cause: string
  /** For a pass: done, failed (with error), skipped (with reason), waiting. */
  readonly outcome?: "done" | "failed" | "skipped" | "waiting"
  readonly detail?: string
}

/** How the API, and the CLI acting without a daemon, show one action a pass carried out. */
export const actionView = (r: ActionReport): ActionView => ({
  kind: Action.kindName(r.action._tag),
  target: r.action.target,
  cause: r.action.cause,
  outcome:
    r.outcome._tag === "Done"
      ? "done"
      : r.outcome._tag === "Failed"
        ? "failed"
        : r.outcome._tag === "Skipped"
          ? "skipped"
          : "waiting",
  ...(r.outcome._tag === "Failed" ? { detail: r.outcome.error } : {}),
  ...(r.outcome._tag === "Skipped" ? { detail: r.outcome.reason } : {})
})

export interface PackageView {
  readonly id: string
  readonly name: string
  readonly version: string
  readonly description: string
  readonly category: string
  readonly installed: boolean
  readonly running: boolean
}

export interface ContainerView {
  readonly name: string
  readonly state: string
  readonly health?: "healthy" | "unhealthy" | "starting"
  /** Why it is unhealthy, backing off or waiting, in words. */
  readonly reason?: string
  readonly exitCode?: number
  readonly startedAt?: string
  readonly backoffUntil?: string
}

/** The app's latest upgrade, as `package.status` shows it. */
export interface UpgradeView {
  readonly state: "pending" | "committed" | "failed" | "rolled-back"
  readonly changes: ReadonlyArray<{ readonly container: string; readonly from: string; readonly to: string }>
  readonly reason: string
  readonly startedAt: string
  readonly updatedAt: string
}

/** One setting of an app: its effective value, and whether that is the manifest's default. */
export interface SettingView {
  readonly key: string
  readonly value: string | number | boolean
  readonly isDefault: boolean
  readonly default: string | number | boolean
  readonly type: "enum" | "int" | "bool" | "string"
  /** What it accepts, in words: `one of mainnet, testnet4, …`, `an integer >= 0 (MiB)`. */
  readonly expected: string
  readonly description: string
}

export interface PackageStatus {
  readonly id: string
  readonly installed: boolean
  readonly stopped: boolean
  readonly containers: ReadonlyArray<ContainerView>
  readonly upgrade?: UpgradeView
  /** The app's settings in manifest order (empty when it declares none). */
  readonly settings: ReadonlyArray<SettingView>
}

/** What `package.update` and `package.rollback` answer. */
export interface UpgradeOutcome {
  readonly id: string
  readonly outcome: "committed" | "failed" | "rolled-back" | "unchanged"
  readonly changes: ReadonlyArray<{ readonly container: string; readonly from: string; readonly to: string }>
  readonly reason: string
  readonly actions: ReadonlyArray<ActionView>
}

/** What `package.configure` did: the settings whose value changed, then the pass it ran. */
export interface ConfigureResult {
  readonly changed: ReadonlyArray<string>
  readonly actions: ReadonlyArray<ActionView>
}

export interface SystemHealth {
  readonly podman: "reachable" | "unreachable"
  readonly podmanDetail?: string
  readonly lastPass?: {
    readonly at: string
    readonly ms: number
    readonly actions: number
    readonly failed: number
  }
  readonly catalogIssues: number
  readonly uptimeSeconds: number
}

/** A request the daemon refuses, with the JSON-RPC error code the API should send. */
export class OperationError extends Data.TaggedError("OperationError")<{
  /** -32602 invalid params (unknown app, conflicting install), -32000 server error (podman down…). */
  readonly code: number
  readonly message: string
}> {}

export class Operations extends Context.Service<
  Operations,
  {
    readonly list: Effect.Effect<ReadonlyArray<PackageView>, OperationError>
    /** All installed apps, or one app (installed or not). */
    readonly status: (id?: string) => Effect.Effect<ReadonlyArray<PackageStatus>, OperationError>
    /** Each changes the persisted selection, then runs the plan for that app under its lock. */
    readonly install: (id: string) => Effect.Effect<ReadonlyArray<ActionView>, OperationError>
    readonly uninstall: (id: string) => Effect.Effect<ReadonlyArray<ActionView>, OperationError>
    readonly start: (id: string) => Effect.Effect<ReadonlyArray<ActionView>, OperationError>
    readonly stop: (id: string) => Effect.Effect<ReadonlyArray<ActionView>, OperationError>
    readonly restart: (id: string) => Effect.Effect<ReadonlyArray<ActionView>, OperationError>
    /**
     * Recreates the app's containers on a new image, holds them to the health gate, and goes
     * back to the previous image when it fails; answers once that is decided.
     */
    readonly update: (request: {
      readonly id: string
      readonly image?: string
      readonly container?: string
    }) => Effect.Effect<UpgradeOutcome, OperationError>
    readonly rollback: (id: string) => Effect.Effect<UpgradeOutcome, OperationError>
    /** Finishes the upgrades a stopped daemon left pending (run once after start). */
    readonly resumeUpgrades: Effect.Effect<void>
    /**
     * Checks and persists setting changes (`null` resets one to its default), then runs a pass:
     * the changed files are rewritten and exactly their consumers restarted. Invalid changes are
     * refused (-32602) with the reason and change nothing.
     */
    readonly configure: (
      id: string,
      settings: Readonly<Record<string, string | number | boolean | null>>
    ) => Effect.Effect<ConfigureResult, OperationError>
    /** The dry run: what a pass would do now. */
    readonly plan: Effect.Effect<ReadonlyArray<ActionView>, OperationError>
    /** A pass now (waits for a running one to finish first). */
    readonly reconcile: Effect.Effect<ReadonlyArray<ActionView>, OperationError>
    readonly health: Effect.Effect<SystemHealth, OperationError>
    /** Over-the-air updates (see @archy/ota): what the mirrors offer, apply it, state, roll back. */
    readonly updateCheck: Effect.Effect<unknown, OperationError>
    readonly updateApply: Effect.Effect<unknown, OperationError>
    readonly updateStatus: Effect.Effect<unknown, OperationError>
    readonly updateRollback: Effect.Effect<unknown, OperationError>
  }
>()("archy/daemon/Operations") {}
