/**
 * `archy apply`: reconcile the live node until it settles: a pass, and another while a pass
 * brought up a dependency that others wait for (at most 20). Prints every action as it is
 * carried out, with its cause and result; exits 1 when any action failed (the others still ran).
 */
import { Action } from "@archy/core"
import type { ActionView } from "@archy/daemon/Operations"
import { type ActionReport, reconcileUntilSettled } from "@archy/engine/Reconciler"
import * as Console from "effect/Console"
import { Command } from "effect/cli"
import * as Effect from "effect/Effect"
import { loadCatalogOrReport, resolveAppsDir } from "../CatalogInput.ts"
import { call } from "../DaemonClient.ts"
import { daemonOf, nodeConfigOf, nodeFlags, nodeLayer } from "../NodeOptions.ts"
import { Reported } from "../Reported.ts"
import { selectionOf } from "../Selection.ts"
import { readSettings } from "../SettingsInput.ts"

const describe = (r: ActionReport): string => {
  const head = `${Action.kindName(r.action._tag)} ${r.action.target}`
  switch (r.outcome._tag) {
    case "Done":
      return `done     ${head}: ${r.action.cause} (${r.outcome.ms} ms)`
    case "Failed":
      return `FAILED   ${head}: ${r.action.cause}\n         error: ${r.outcome.error}`
    case "Skipped":
      return `skipped  ${head}: ${r.outcome.reason}`
    case "Waiting":
      return `waiting  ${head}: ${r.action.cause}`
  }
}

export const apply = Command.make(
  "apply",
  nodeFlags,
  Effect.fn(function* (options) {
    const running = yield* daemonOf(options)
    if (running !== undefined) {
      // A running daemon owns the node: ask it for a pass instead of racing it.
      const views = (yield* call("system.reconcile", undefined, running).pipe(
        Effect.catch((e) => Effect.andThen(Console.error(`archy: ${e.message}`), Effect.fail(new Reported())))
      )) as ReadonlyArray<ActionView>
      for (const v of views) {
        yield* Console.log(
          `${(v.outcome ?? "").padEnd(8)} ${v.kind} ${v.target}: ${v.cause}${v.detail !== undefined ? ` (${v.detail})` : ""}`
        )
      }
      yield* Console.log(
        views.length === 0
          ? "nothing to do: the node matches its manifests"
          : `${views.length} action(s) by the daemon`
      )
      if (views.some((v) => v.outcome === "failed")) return yield* new Reported()
      return
    }
    const catalog = yield* loadCatalogOrReport(yield* resolveAppsDir(options.apps))
    const settings = yield* readSettings(options)
    const { reports, last, passes } = yield* reconcileUntilSettled(
      { catalog, selection: selectionOf(catalog), node: nodeConfigOf(options), settings },
      {
        onAction: (r) => Console.log(describe(r)),
        onPass: (n) => (n > 1 ? Console.log(`pass ${n}: dependencies came up; going on`) : Effect.void),
        progress: (line) => Console.error(`  ${line}`)
      }
    ).pipe(Effect.provide(nodeLayer(options)))
    const count = (tag: string) => reports.filter((r) => r.outcome._tag === tag).length
    if (reports.length === 0) yield* Console.log("nothing to do: the node matches its manifests")
    else {
      yield* Console.log(
        `${reports.length} action(s) in ${passes} pass(es): ${count("Done")} done, ${count("Failed")} failed, ${count("Skipped")} skipped, ${last.filter((r) => r.outcome._tag === "Waiting").length} still waiting`
      )
    }
    if (count("Failed") > 0 || catalog.issues.length > 0) return yield* new Reported()
  })
).pipe(Command.withDescription("Run one reconcile pass against the live node and print what it did"))
