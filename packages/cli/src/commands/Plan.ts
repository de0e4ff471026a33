/**
 * `archy plan`: the dry run. Plans the catalog's default apps against an Observed snapshot read
 * from a JSON file (or an empty node) and prints each action with its cause. Changes nothing.
 */
import { Action, type Catalog, Desired, Manifest, Observed, Plan } from "@archy/core"
import { planNow } from "@archy/engine/Reconciler"
import * as Console from "effect/Console"
import { Command, Flag } from "effect/cli"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as SchemaIssue from "effect/SchemaIssue"
import { loadCatalogOrReport, resolveAppsDir } from "../CatalogInput.ts"
import { call } from "../DaemonClient.ts"
import { daemonOf, type NodeOptions, nodeConfigOf, nodeFlags, nodeLayer } from "../NodeOptions.ts"
import { Reported } from "../Reported.ts"
import { selectionOf } from "../Selection.ts"
import { readSettings } from "../SettingsInput.ts"

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

/** The dry run against a snapshot: a file, or an empty node. */
const planOffline = (catalog: Catalog.Catalog, node: Desired.NodeConfig, snapshot: Observed.Observed) =>
  Plan.plan(Desired.make({ catalog, node, selection: selectionOf(catalog), secrets: new Map() }), snapshot, {
    now: Date.now()
  })

export const plan = Command.make(
  "plan",
  {
    ...nodeFlags,
    observed: Flag.String("observed").pipe(
      Flag.withDescription("Plan against a JSON snapshot of the node instead of live podman"),
      Flag.optional
    ),
    fresh: Flag.Boolean("fresh").pipe(
      Flag.withDescription("Plan for an empty node instead of live podman"),
      Flag.withDefault(false)
    ),
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print {actions:[{kind,target,cause}]}"),
      Flag.withDefault(false)
    )
  },
  Effect.fn(function* (options) {
    const catalog = yield* loadCatalogOrReport(yield* resolveAppsDir(options.apps))
    const node = nodeConfigOf(options)
    const views = Option.isSome(options.observed)
      ? planOffline(catalog, node, yield* readObserved(options.observed.value)).map(Action.toJson)
      : options.fresh
        ? planOffline(catalog, node, Observed.empty).map(Action.toJson)
        : yield* planLive(options, catalog, node)
    if (options.json) yield* Console.log(JSON.stringify({ actions: views }, null, 2))
    else yield* Console.log(Action.renderViews(views).trimEnd())
    if (catalog.issues.length > 0) return yield* new Reported()
  })
).pipe(Command.withDescription("Dry run: print what a reconcile pass would do, with causes; changes nothing"))

/** Against the live node: through the daemon when it runs (it plans with its own selection). */
const planLive = (options: NodeOptions, catalog: Catalog.Catalog, node: Desired.NodeConfig) =>
  Effect.gen(function* () {
    const running = yield* daemonOf(options)
    if (running !== undefined) {
      return (yield* call("system.plan", undefined, running).pipe(
        Effect.catch((e) => Effect.andThen(Console.error(`archy: ${e.message}`), Effect.fail(new Reported())))
      )) as ReadonlyArray<Action.ActionJson>
    }
    const settings = yield* readSettings(options)
    return yield* planNow({ catalog, selection: selectionOf(catalog), node, settings }).pipe(
      Effect.map((p) => p.actions.map(Action.toJson)),
      Effect.provide(nodeLayer(options)),
      // Without podman (a laptop, a build box) the dry run still shows the fresh-node plan,
      // and says so: it never pretends to have seen a node it could not reach.
      Effect.catchTag("RuntimeError", (e) =>
        Effect.as(
          Console.error(`archy: ${e.message}; planning for an empty node instead`),
          planOffline(catalog, node, Observed.empty).map(Action.toJson)
        )
      )
    )
  })
