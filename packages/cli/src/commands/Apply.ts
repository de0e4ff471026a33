/**
 * `archy apply`: one reconcile pass against the live node. Prints every action as it is carried
 * out, with its cause and result; exits 1 when any action failed (the others still ran).
 */
import { Action } from "@archy/core"
import { type ActionReport, reconcileOnce } from "@archy/engine/Reconciler"
import * as Console from "effect/Console"
import { Command } from "effect/cli"
import * as Effect from "effect/Effect"
import { loadCatalogOrReport, resolveAppsDir } from "../CatalogInput.ts"
import { nodeConfigOf, nodeFlags, nodeLayer } from "../NodeOptions.ts"
import { Reported } from "../Reported.ts"
import { selectionOf } from "../Selection.ts"

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
    const catalog = yield* loadCatalogOrReport(yield* resolveAppsDir(options.apps))
    const reports = yield* reconcileOnce(
      { catalog, selection: selectionOf(catalog), node: nodeConfigOf(options) },
      {
        onAction: (r) => Console.log(describe(r)),
        progress: (line) => Console.error(`  ${line}`)
      }
    ).pipe(Effect.provide(nodeLayer(options)))
    const count = (tag: string) => reports.filter((r) => r.outcome._tag === tag).length
    if (reports.length === 0) yield* Console.log("nothing to do: the node matches its manifests")
    else {
      yield* Console.log(
        `${reports.length} action(s): ${count("Done")} done, ${count("Failed")} failed, ${count("Skipped")} skipped, ${count("Waiting")} waiting`
      )
    }
    if (count("Failed") > 0 || catalog.issues.length > 0) return yield* new Reported()
  })
).pipe(Command.withDescription("Run one reconcile pass against the live node and print what it did"))
