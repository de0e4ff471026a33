/**
 * `archy plan`: the dry run. Plans the catalog's default apps against an Observed snapshot read
 * from a JSON file (or an empty node) and prints each action with its cause. Changes nothing.
 */
import { Action, Desired, Manifest, Observed, Plan } from "@archy/core"
import * as Console from "effect/Console"
import { Command, Flag } from "effect/cli"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as SchemaIssue from "effect/SchemaIssue"
import { loadCatalogOrReport, resolveAppsDir } from "../CatalogInput.ts"
import { Reported } from "../Reported.ts"

const formatObservedError = SchemaIssue.makeFormatterStandardSchemaV1()

const readObserved = Effect.fn("Cli.readObserved")(function* (file: string) {
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs
    .readFileString(file)
    .pipe(
      Effect.catchTag("PlatformError", (e) =>
        Effect.andThen(Console.error(`archy: cannot read ${file}: ${e.message}`), Effect.fail(new Reported()))
      )
    )
  const decoded = Observed.decodeObservedJson(text)
  if (decoded._tag === "Success") return decoded.success
  for (const issue of formatObservedError(decoded.failure.issue).issues) {
    const at = Manifest.pathText((issue.path ?? []).map((p) => (typeof p === "object" ? p.key : p)))
    yield* Console.error(`${file}: ${at === "" ? "" : `at ${at}: `}${issue.message}`)
  }
  return yield* new Reported()
})

export const plan = Command.make(
  "plan",
  {
    apps: Flag.String("apps").pipe(Flag.withDescription("Catalog directory"), Flag.optional),
    observed: Flag.String("observed").pipe(
      Flag.withDescription("JSON snapshot of the node (default: an empty node)"),
      Flag.optional
    ),
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print {actions:[{kind,target,cause}]}"),
      Flag.withDefault(false)
    )
  },
  Effect.fn(function* ({ apps, observed, json }) {
    const catalog = yield* loadCatalogOrReport(yield* resolveAppsDir(apps))
    const snapshot = Option.isSome(observed) ? yield* readObserved(observed.value) : Observed.empty
    const desired = Desired.make({
      catalog,
      node: Desired.defaultNodeConfig,
      selection: Desired.defaultSelection(catalog),
      secrets: new Map()
    })
    const actions = Plan.plan(desired, snapshot, { now: Date.now() })
    if (json) yield* Console.log(JSON.stringify({ actions: actions.map(Action.toJson) }, null, 2))
    else yield* Console.log(Action.renderText(actions).trimEnd())
    if (catalog.issues.length > 0) return yield* new Reported()
  })
).pipe(Command.withDescription("Dry run: print what a reconcile pass would do, with causes"))
