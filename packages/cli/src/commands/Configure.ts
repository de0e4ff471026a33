/**
 * `archy configure APP [KEY=VALUE ...] [--reset KEY]`: changes an app's typed settings, or with
 * no change lists them (effective value, whether it is the default, what it accepts, what it
 * means). A change is checked first (type, range, the app's rules, every rendered file, host
 * ports) and refused with the reason, changing nothing; an accepted one is persisted in
 * `<state-dir>/settings.json` and a pass rewrites the affected configs and restarts exactly their
 * consumers. Through the daemon when one runs for the state dir (`package.configure`), else
 * directly.
 */

import { configure as checkConfigure } from "@archy/core/Configure"
import * as Settings from "@archy/core/Settings"
import {
  type ActionView,
  actionView,
  type ConfigureResult,
  type PackageStatus,
  type SettingView
} from "@archy/daemon/Operations"
import { reconcileUntilSettled } from "@archy/engine/Reconciler"
import { SettingsStore } from "@archy/engine/SettingsStore"
import * as Console from "effect/Console"
import { Argument, Command, Flag } from "effect/cli"
import * as Effect from "effect/Effect"
import { loadCatalogOrReport, resolveAppsDir } from "../CatalogInput.ts"
import { call } from "../DaemonClient.ts"
import { daemonOf, nodeConfigOf, nodeFlags, nodeLayer } from "../NodeOptions.ts"
import { Reported } from "../Reported.ts"
import { selectionOf } from "../Selection.ts"
import { readSettings, settingsLayerOf } from "../SettingsInput.ts"

/** `KEY=VALUE` words into changes; `--reset KEY` becomes null (back to the default). */
export const parseAssignments = (
  words: ReadonlyArray<string>,
  resets: ReadonlyArray<string>
): { readonly changes: Record<string, string | null> } | { readonly error: string } => {
  const changes: Record<string, string | null> = {}
  for (const word of words) {
    const at = word.indexOf("=")
    if (at <= 0) return { error: `expected KEY=VALUE, got "${word}"` }
    changes[word.slice(0, at)] = word.slice(at + 1)
  }
  for (const key of resets) changes[key] = null
  return { changes }
}

const valueText = (v: string | number | boolean): string => (typeof v === "string" ? v : JSON.stringify(v))

/** The listing: one block per setting. */
export const renderSettings = (app: string, views: ReadonlyArray<SettingView>): string => {
  if (views.length === 0) return `${app} has no settings`
  const width = Math.max(...views.map((v) => v.key.length))
  return views
    .map(
      (v) =>
        `${v.key.padEnd(width)}  ${valueText(v.value)}${v.isDefault ? " (default)" : ` (default ${valueText(v.default)})`}\n` +
        `${" ".repeat(width)}  ${v.description}\n` +
        `${" ".repeat(width)}  accepts ${v.expected}`
    )
    .join("\n")
}

const fail = (message: string) =>
  Effect.andThen(Console.error(`archy: ${message}`), Effect.fail(new Reported()))

const describeView = (v: ActionView): string =>
  `${(v.outcome ?? "").padEnd(8)} ${v.kind} ${v.target}: ${v.cause}${v.detail !== undefined ? ` (${v.detail})` : ""}`

const printResult = (result: ConfigureResult, json: boolean) =>
  Effect.gen(function* () {
    if (json) return yield* Console.log(JSON.stringify(result, null, 2))
    if (result.changed.length === 0)
      return yield* Console.log("nothing changed: those are the current values")
    yield* Console.log(`changed: ${result.changed.join(", ")}`)
    for (const v of result.actions) yield* Console.log(describeView(v))
    if (result.actions.length === 0) yield* Console.log("nothing to do: the node already matches")
  })

export const configure = Command.make(
  "configure",
  {
    ...nodeFlags,
    app: Argument.String("app").pipe(Argument.withDescription("The app whose settings to show or change")),
    assignments: Argument.String("KEY=VALUE").pipe(
      Argument.withDescription("Settings to change; none lists the app's settings"),
      Argument.variadic()
    ),
    reset: Flag.String("reset").pipe(
      Flag.withDescription("Put a setting back to its default (repeatable)"),
      Flag.atLeast(0)
    ),
    json: Flag.Boolean("json").pipe(Flag.withDescription("Print JSON"), Flag.withDefault(false))
  },
  Effect.fn(function* (options) {
    const parsed = parseAssignments(options.assignments, options.reset)
    if ("error" in parsed) return yield* fail(parsed.error)
    const listing = Object.keys(parsed.changes).length === 0
    const running = yield* daemonOf(options)
    if (running !== undefined) {
      if (listing) {
        const [status] = (yield* call("package.status", { id: options.app }, running).pipe(
          Effect.catch((e) => fail(e.message))
        )) as ReadonlyArray<PackageStatus>
        const views = status?.settings ?? []
        yield* Console.log(
          options.json ? JSON.stringify({ settings: views }, null, 2) : renderSettings(options.app, views)
        )
        return
      }
      const result = (yield* call(
        "package.configure",
        { id: options.app, settings: parsed.changes },
        running
      ).pipe(Effect.catch((e) => fail(e.message)))) as ConfigureResult
      yield* printResult(result, options.json)
      if (result.actions.some((a) => a.outcome === "failed")) return yield* new Reported()
      return
    }

    const catalog = yield* loadCatalogOrReport(yield* resolveAppsDir(options.apps))
    const app = catalog.apps.find((a) => a.manifest.id === options.app)
    if (app === undefined) return yield* fail(`no app "${options.app}" in the catalog`)
    const choices = yield* readSettings(options)
    if (listing) {
      const effective = Settings.effective(app.manifest.settings, choices[options.app])
      const views = Object.entries(app.manifest.settings ?? {}).map(
        ([key, decl]): SettingView => ({
          key,
          value: effective.values[key]!,
          isDefault: !effective.chosen.includes(key),
          default: decl.default,
          type: decl.type,
          expected: Settings.expected(decl),
          description: decl.description
        })
      )
      yield* Console.log(
        options.json ? JSON.stringify({ settings: views }, null, 2) : renderSettings(options.app, views)
      )
      return
    }
    const selection = selectionOf(catalog)
    const node = nodeConfigOf(options)
    let changed: ReadonlyArray<string> = []
    const saved = yield* Effect.gen(function* () {
      const store = yield* SettingsStore
      return yield* store.update((current) => {
        const result = checkConfigure({
          catalog,
          selection,
          node,
          choices: current,
          app: options.app,
          changes: parsed.changes
        })
        if (result._tag === "Refused") return Effect.fail(result.reasons)
        changed = result.changed
        return Effect.succeed(result.choices)
      })
    }).pipe(
      Effect.provide(settingsLayerOf(options)),
      Effect.catch((e) => fail(Array.isArray(e) ? `${options.app}: ${e.join("; ")}` : (e as Error).message))
    )
    if (changed.length === 0) return yield* printResult({ changed, actions: [] }, options.json)
    const { reports } = yield* reconcileUntilSettled(
      { catalog, selection, node, settings: saved },
      { progress: (line) => Console.error(`  ${line}`) }
    ).pipe(Effect.provide(nodeLayer(options)))
    const result = { changed, actions: reports.map(actionView) }
    yield* printResult(result, options.json)
    if (reports.some((r) => r.outcome._tag === "Failed")) return yield* new Reported()
  })
).pipe(
  Command.withDescription(
    "Show an app's settings, or change them (KEY=VALUE): checked, persisted, then the affected configs are rewritten and their consumers restarted"
  )
)
