/**
 * One reconcile pass: read the canonical secrets, derive Desired, observe the node (podman,
 * rendered files on disk, secrets that exist, adoption records), plan, and carry the actions
 * out in order. The decisions are all in `plan`; this module only observes and executes.
 *
 * A failing action does not end the pass: its error is recorded, later actions of the same app
 * are skipped with the reason, and every other app goes on.
 */
import type { Action } from "@archy/core/Action"
import type { Catalog } from "@archy/core/Catalog"
import * as Desired from "@archy/core/Desired"
import { sha256Hex } from "@archy/core/Hash"
import type { Observed, ObservedFile } from "@archy/core/Observed"
import { plan } from "@archy/core/Plan"
import type { SettingsChoices } from "@archy/core/Settings"
import { isRuntimeAction, PodmanRuntime, type Progress } from "@archy/podman/PodmanRuntime"
import { PodmanState } from "@archy/podman/PodmanState"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { AdoptionStore } from "./AdoptionStore.ts"
import { AppLocks } from "./AppLocks.ts"
import { writeAtomic } from "./AtomicFile.ts"
import { CrashMemory } from "./CrashBackoff.ts"
import { HostDirectories } from "./Directories.ts"
import { checkGates, HealthBook, overlayHealth } from "./Health.ts"
import { SecretStore } from "./SecretStore.ts"
import { UpgradeStore } from "./UpgradeStore.ts"

/** What a pass works from: the catalog, the user's choices and the node's settings. */
export interface PassInput {
  readonly catalog: Catalog
  readonly selection: Desired.Selection
  readonly node: Desired.NodeConfig
  /** The operator's setting choices (`SettingsStore`); absent: every app's defaults. */
  readonly settings?: SettingsChoices
}

export type Outcome =
  | { readonly _tag: "Done"; readonly ms: number }
  | { readonly _tag: "Failed"; readonly error: string; readonly ms: number }
  | { readonly _tag: "Skipped"; readonly reason: string }
  | { readonly _tag: "Waiting" }

export interface ActionReport {
  readonly action: Action
  readonly outcome: Outcome
}

export class ExecuteError extends Data.TaggedError("ExecuteError")<{ readonly message: string }> {}

/** Secrets any installed app of the catalog consumes. */
const secretNames = (input: PassInput): ReadonlyArray<string> => {
  const installed = new Set(input.selection.installed)
  return [
    ...new Set(
      input.catalog.apps.filter((a) => installed.has(a.manifest.id)).flatMap((a) => a.manifest.secrets ?? [])
    )
  ]
}

/** Reads the secrets (and the upgrade records, when kept) and derives Desired from them. */
export const desiredNow = Effect.fn("Reconciler.desired")(function* (input: PassInput) {
  const store = yield* SecretStore
  const secrets = yield* store.read(secretNames(input))
  const upgrades = yield* Effect.serviceOption(UpgradeStore)
  const imageOverrides = Option.isSome(upgrades) ? yield* upgrades.value.overrides : {}
  return Desired.make({
    catalog: input.catalog,
    node: input.node,
    selection: input.selection,
    secrets,
    imageOverrides,
    ...(input.settings !== undefined ? { settings: input.settings } : {})
  })
})

/** The rendered files the plan compares: bytes hashed, mode and owner, mtime. */
const observeFiles = Effect.fn("Reconciler.observeFiles")(function* (desired: Desired.Desired) {
  const fs = yield* FileSystem.FileSystem
  const out: Array<ObservedFile> = []
  for (const app of desired.apps) {
    for (const file of app.files) {
      const info = yield* fs.stat(file.path).pipe(Effect.option)
      if (Option.isNone(info) || info.value.type !== "File") continue
      const bytes = yield* fs.readFile(file.path).pipe(Effect.option)
      if (Option.isNone(bytes)) continue
      const uid = Option.getOrUndefined(info.value.uid)
      const gid = Option.getOrUndefined(info.value.gid)
      out.push({
        path: file.path,
        sha256: sha256Hex(new TextDecoder().decode(bytes.value)),
        mode: info.value.mode,
        ...(uid !== undefined && gid !== undefined ? { owner: `${uid}:${gid}` } : {}),
        mtimeMs: Option.match(info.value.mtime, { onNone: () => 0, onSome: (d) => d.getTime() })
      })
    }
  }
  return out
})

/**
 * FM6: containers podman's storage holds under our names that its state DB lost. One file read
 * on a healthy node; when the check itself fails the pass goes on without it (logged).
 */
const observeOrphans = (desired: Desired.Desired, listed: ReadonlyArray<{ readonly id: string }>) =>
  Effect.gen(function* () {
    const state = yield* Effect.serviceOption(PodmanState)
    if (Option.isNone(state)) return []
    const names = new Set(desired.apps.flatMap((a) => a.containers.map((c) => c.name)))
    return yield* state.value
      .orphans(listed, names)
      .pipe(Effect.catch((e) => Effect.as(Effect.logWarning(`podman state check failed: ${e.message}`), [])))
  })

/** The whole Observed snapshot: one podman observe plus the files and secrets on disk. */
export const observeNode = Effect.fn("Reconciler.observe")(function* (desired: Desired.Desired) {
  const runtime = yield* PodmanRuntime
  const adoption = yield* AdoptionStore
  const store = yield* SecretStore
  const health = yield* HealthBook
  const snapshot = yield* runtime.observe
  const orphans = yield* observeOrphans(desired, snapshot.containers)
  const adopted = yield* adoption.overlay(snapshot.containers)
  // Dependencies a waiting dependant needs healthy are checked now, not one timer later.
  yield* checkGates(desired, overlayHealth(adopted, yield* health.all))
  const containers = overlayHealth(adopted, yield* health.all)
  const crashes = yield* Effect.serviceOption(CrashMemory)
  const backoff = Option.isSome(crashes)
    ? yield* crashes.value.observe(desired, containers, yield* Clock.currentTimeMillis)
    : []
  return {
    containers,
    backoff,
    images: snapshot.images,
    networks: snapshot.networks,
    secrets: yield* store.names,
    files: yield* observeFiles(desired),
    directories: yield* (yield* HostDirectories).observe([
      ...desired.directories,
      ...desired.apps.flatMap((a) => a.directories)
    ]),
    ...(orphans.length > 0 ? { orphans } : {})
  } satisfies Observed
})

/** Plans without changing anything: the live dry run. */
export const planNow = Effect.fn("Reconciler.plan")(function* (input: PassInput) {
  const desired = yield* desiredNow(input)
  const observed = yield* observeNode(desired)
  return { desired, observed, actions: plan(desired, observed, { now: yield* Clock.currentTimeMillis }) }
})

/** Carries out one action. */
export const execute = Effect.fn("Reconciler.execute")(function* (action: Action, progress?: Progress) {
  const runtime = yield* PodmanRuntime
  if (isRuntimeAction(action)) return yield* runtime.apply(action, progress)
  switch (action._tag) {
    case "EnsureSecret": {
      const store = yield* SecretStore
      return yield* store.ensure(action.name)
    }
    case "EnsureDirectory":
      return yield* (yield* HostDirectories).ensure(action.directory, action.exists)
    case "WriteFile": {
      const file = action.file
      // Rendered now when its secret was generated earlier in this same pass.
      const content =
        file.content !== undefined
          ? Redacted.value(file.content)
          : yield* Effect.gen(function* () {
              const store = yield* SecretStore
              const secrets = yield* store.read(file.secrets)
              const missing = file.secrets.filter((s) => !secrets.has(s))
              if (missing.length > 0) {
                return yield* new ExecuteError({ message: `secret ${missing.join(", ")} does not exist` })
              }
              return yield* Effect.try({
                try: () => Desired.rendererOf(file).render({ secrets, params: file.params }),
                catch: (e) => new ExecuteError({ message: e instanceof Error ? e.message : String(e) })
              })
            })
      const options = { mode: file.mode, ...(file.owner !== undefined ? { owner: file.owner } : {}) }
      return yield* writeAtomic(file.path, new TextEncoder().encode(content), options)
    }
    case "Adopt": {
      const adoption = yield* AdoptionStore
      return yield* adoption.record(action.containerId, {
        app: action.container.app,
        container: action.container.name,
        specHash: action.specMatches ? action.container.specHash : "adopted"
      })
    }
    case "CleanOrphan": {
      const state = yield* Effect.serviceOption(PodmanState)
      if (Option.isNone(state)) {
        return yield* new ExecuteError({ message: "no podman state repair is available here" })
      }
      const steps = yield* state.value.clean({ id: action.containerId, name: action.name })
      yield* Effect.logInfo(`cleaned orphan ${action.name}: ${steps.join("; ") || "nothing was left"}`).pipe(
        Effect.annotateLogs({ container: action.name, id: action.containerId })
      )
      return
    }
    case "Wait":
      return
  }
})

/**
 * Actions that change a container or a file run to the end once begun, so a SIGTERM never leaves
 * one half done; pulls, builds and stops may be abandoned (podman finishes or forgets them
 * safely). Each runs under its apps' locks when the daemon provides them.
 */
const mustFinish: ReadonlySet<Action["_tag"]> = new Set([
  "EnsureDirectory",
  "EnsureSecret",
  "WriteFile",
  "Create",
  "Recreate",
  "Remove",
  "Adopt",
  "EnsureNetwork",
  "CleanOrphan"
])

const guarded = (action: Action, apps: ReadonlyArray<string>, progress?: Progress) =>
  Effect.gen(function* () {
    const run = mustFinish.has(action._tag)
      ? Effect.uninterruptible(execute(action, progress))
      : execute(action, progress)
    const locks = yield* Effect.serviceOption(AppLocks)
    return yield* Option.isSome(locks) ? locks.value.withApps(apps, run) : run
  })

/** Which apps an action belongs to, so a failure skips only their later actions. */
const appsOf = (action: Action, desired: Desired.Desired): ReadonlyArray<string> | "all" => {
  switch (action._tag) {
    case "EnsureNetwork":
      return "all"
    case "EnsureDirectory":
      // The node's own directories (the secrets dir) come before everything.
      return action.directory.app !== undefined ? [action.directory.app] : "all"
    case "EnsureSecret":
      return desired.apps.filter((a) => a.files.some((f) => f.secrets.includes(action.name))).map((a) => a.id)
    case "PullImage":
    case "BuildImage":
      return desired.apps
        .filter((a) => a.containers.some((c) => c.spec.image === action.source.ref))
        .map((a) => a.id)
    case "WriteFile":
      return [action.file.app]
    case "Create":
    case "Recreate":
    case "Adopt":
      return [action.container.app]
    default: {
      const name = action.target.replace(/^container:/, "")
      const app = desired.apps.find((a) => a.containers.some((c) => c.name === name))
      return app === undefined ? [] : [app.id]
    }
  }
}

/**
 * One reconcile pass. `onAction` sees each action's outcome as it happens (the CLI prints it);
 * `progress` receives pull and build output.
 */
export const reconcileOnce = Effect.fn("Reconciler.pass")(function* (
  input: PassInput,
  options: {
    readonly onAction?: (report: ActionReport) => Effect.Effect<void>
    readonly progress?: Progress
  } = {}
) {
  const { desired, actions } = yield* planNow(input)
  const failedApps = new Set<string>()
  let allFailed: string | undefined
  const reports: Array<ActionReport> = []
  for (const action of actions) {
    const apps = appsOf(action, desired)
    const blockedBy = allFailed ?? (apps === "all" ? undefined : apps.find((a) => failedApps.has(a)))
    let outcome: Outcome
    if (action._tag === "Wait") {
      outcome = { _tag: "Waiting" }
    } else if (blockedBy !== undefined) {
      outcome = { _tag: "Skipped", reason: `an earlier action for ${blockedBy} failed` }
    } else {
      const started = yield* Clock.currentTimeMillis
      const result = yield* Effect.result(guarded(action, apps === "all" ? [] : apps, options.progress))
      const ms = (yield* Clock.currentTimeMillis) - started
      if (result._tag === "Success") {
        outcome = { _tag: "Done", ms }
      } else {
        outcome = { _tag: "Failed", error: result.failure.message, ms }
        if (apps === "all") allFailed = action.target
        else for (const a of apps) failedApps.add(a)
      }
    }
    const report = { action, outcome }
    reports.push(report)
    if (options.onAction !== undefined) yield* options.onAction(report)
  }
  return reports as ReadonlyArray<ActionReport>
})

/**
 * Passes until the node settles: while a pass changed something and something still waits
 * (a dependant on its dependency's health), pass again after `pauseMs`, at most `maxPasses`.
 * What the CLI's `apply` does; the daemon instead passes on its timer and on events.
 */
export const reconcileUntilSettled = Effect.fn("Reconciler.settle")(function* (
  input: PassInput,
  options: {
    readonly onAction?: (report: ActionReport) => Effect.Effect<void>
    readonly onPass?: (pass: number) => Effect.Effect<void>
    readonly progress?: Progress
    readonly maxPasses?: number
    readonly pauseMs?: number
  } = {}
) {
  const all: Array<ActionReport> = []
  const maxPasses = options.maxPasses ?? 20
  let passes = 0
  let last: ReadonlyArray<ActionReport> = []
  for (; passes < maxPasses; ) {
    passes++
    if (options.onPass !== undefined) yield* options.onPass(passes)
    const reports = yield* reconcileOnce(input, options)
    last = reports
    all.push(...reports)
    const changed = reports.some((r) => r.outcome._tag === "Done")
    const waiting = reports.some((r) => r.outcome._tag === "Waiting")
    // A failure would only fail again at once: leave it to the next run (or the daemon's backoff).
    const failed = reports.some((r) => r.outcome._tag === "Failed")
    if (!changed || !waiting || failed) break
    const pauseMs = options.pauseMs ?? 1000
    if (pauseMs > 0) yield* Effect.sleep(pauseMs)
  }
  /** `last` is the final pass: what still waits is in it. */
  return { reports: all as ReadonlyArray<ActionReport>, last, passes }
})
