/**
 * A change to one app's settings, checked before anything is written: each value against its
 * declaration, the app's setting rules, every installed app's rendered files (a renderer may
 * refuse a combination, and a setting may reach other apps through references), and host ports
 * (a moved port must not land on another app's). Pure: the caller persists the new choices and
 * runs a pass.
 */
import * as Redacted from "effect/Redacted"
import type { Catalog } from "./Catalog.ts"
import * as Desired from "./Desired.ts"
import * as Settings from "./Settings.ts"

export interface ConfigureInput {
  readonly catalog: Catalog
  readonly selection: Desired.Selection
  readonly node: Desired.NodeConfig
  /** Every app's current choices (the whole of `settings.json`). */
  readonly choices: Settings.SettingsChoices
  readonly app: string
  /** The operator's changes; `null` resets a setting to its default. */
  readonly changes: Readonly<Record<string, unknown>>
}

export type ConfigureResult =
  | {
      readonly _tag: "Accepted"
      /** The whole new `settings.json`. */
      readonly choices: Settings.SettingsChoices
      /** Keys whose effective value changes. */
      readonly changed: ReadonlyArray<string>
    }
  | { readonly _tag: "Refused"; readonly reasons: ReadonlyArray<string> }

/** Stands in for every secret while checking renders: params are what is being checked. */
const placeholderSecret = Redacted.make("placeholder-secret-for-settings-checks")

const secretsOf = (catalog: Catalog): ReadonlyMap<string, Redacted.Redacted<string>> =>
  new Map(catalog.apps.flatMap((a) => a.manifest.secrets ?? []).map((s) => [s, placeholderSecret] as const))

const hostPorts = (desired: Desired.Desired) =>
  desired.apps
    .filter((a) => a.blocked === undefined)
    .flatMap((a) =>
      a.containers.flatMap((c) => c.spec.ports.map((p) => ({ app: a.id, key: `${p.protocol}/${p.host}` })))
    )

export const configure = (input: ConfigureInput): ConfigureResult => {
  const app = input.catalog.apps.find((a) => a.manifest.id === input.app)
  if (app === undefined) return { _tag: "Refused", reasons: [`no app "${input.app}" in the catalog`] }
  const decls = app.manifest.settings ?? {}
  const declared = Object.keys(decls)
  const reasons: Array<string> = []
  const next: Record<string, Settings.SettingValue> = { ...(input.choices[input.app] ?? {}) }
  for (const [key, raw] of Object.entries(input.changes)) {
    const decl = decls[key]
    if (decl === undefined) {
      reasons.push(
        declared.length === 0
          ? `${input.app} has no settings`
          : `${input.app} has no setting "${key}" (its settings: ${declared.join(", ")})`
      )
      continue
    }
    if (raw === null) {
      delete next[key]
      continue
    }
    const parsed = Settings.parseValue(decl, raw)
    if ("error" in parsed) reasons.push(`${key}: ${parsed.error}`)
    else next[key] = parsed.value
  }
  if (reasons.length > 0) return { _tag: "Refused", reasons }

  const before = Settings.effective(decls, input.choices[input.app])
  const after = Settings.effective(decls, next)
  const broken = Settings.brokenRules(app.manifest.settingRules ?? [], after.values)
  if (broken.length > 0) return { _tag: "Refused", reasons: broken }

  const choices = { ...input.choices, [input.app]: next }
  const secrets = secretsOf(input.catalog)
  const derive = (settings: Settings.SettingsChoices) =>
    Desired.make({ catalog: input.catalog, node: input.node, selection: input.selection, secrets, settings })
  const old = derive(input.choices)
  const fresh = derive(choices)
  const failedBefore = new Map(
    old.apps.flatMap((a) =>
      a.files.filter((f) => f.renderError !== undefined).map((f) => [f.path, f.renderError])
    )
  )
  for (const a of fresh.apps) {
    for (const f of a.files) {
      if (f.renderError !== undefined && failedBefore.get(f.path) !== f.renderError) {
        reasons.push(`${a.id}'s ${f.path.split("/").pop()} could not be rendered: ${f.renderError}`)
      }
    }
  }
  const oldPorts = new Set(hostPorts(old).map((p) => `${p.app} ${p.key}`))
  const owners = new Map<string, string>()
  for (const p of hostPorts(fresh)) {
    const owner = owners.get(p.key)
    if (
      owner !== undefined &&
      owner !== p.app &&
      !(oldPorts.has(`${owner} ${p.key}`) && oldPorts.has(`${p.app} ${p.key}`))
    ) {
      reasons.push(`host port ${p.key} would be used by both ${owner} and ${p.app}`)
    }
    owners.set(p.key, p.app)
  }
  if (reasons.length > 0) return { _tag: "Refused", reasons }
  const changed = declared.filter((k) => before.values[k] !== after.values[k])
  return { _tag: "Accepted", choices, changed }
}
