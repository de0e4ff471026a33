/**
 * Typed app settings: what a manifest declares under `settings:` (type, default, description),
 * the rules between them (`settingRules:`), the operator's choices overlaid on the defaults, and
 * the `${...}` references that carry effective values into rendered files' params and container
 * specs. Pure: persisting the choices is the engine's `SettingsStore`.
 *
 * References:
 * - `${settings.KEY}` is this app's setting KEY;
 * - `${DEP.settings.KEY}` is setting KEY of the installed app that is or provides DEP (a
 *   dependency of this app, e.g. `${bitcoind.settings.network}`), so one choice reaches every
 *   consumer consistently.
 * A value that is exactly one reference keeps the setting's type (an int param stays an int);
 * inside a longer string the value is spliced in as text. `${NAME}` without a dot is left alone,
 * since shell commands use that syntax; shell variable names never contain dots.
 */
import * as Schema from "effect/Schema"

/** A setting's name: camelCase, as the renderers' params are. */
export const SettingKey = Schema.String.check(
  Schema.isPattern(/^[a-z][a-zA-Z0-9]{0,39}$/, {
    expected: "a camelCase setting name (letters and digits, starting lowercase)"
  })
)

const Description = Schema.NonEmptyString

export const EnumSetting = Schema.Struct({
  type: Schema.Literal("enum"),
  values: Schema.NonEmptyArray(Schema.String),
  default: Schema.String,
  description: Description
})

export const IntSetting = Schema.Struct({
  type: Schema.Literal("int"),
  min: Schema.optionalKey(Schema.Int),
  max: Schema.optionalKey(Schema.Int),
  /** Shown next to the value (`MiB`, `MB`); the value itself is a plain integer. */
  unit: Schema.optionalKey(Schema.NonEmptyString),
  default: Schema.Int,
  description: Description
})

export const BoolSetting = Schema.Struct({
  type: Schema.Literal("bool"),
  default: Schema.Boolean,
  description: Description
})

export const StringSetting = Schema.Struct({
  type: Schema.Literal("string"),
  /** A regular expression the whole value must match. */
  pattern: Schema.optionalKey(Schema.String),
  maxLength: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 4096 }))),
  default: Schema.String,
  description: Description
})

/** One declared setting. */
export const SettingDecl = Schema.Union([EnumSetting, IntSetting, BoolSetting, StringSetting]).annotate({
  expected:
    "a setting: {type: enum (with values), int (min, max, unit), bool or string (pattern, maxLength), default, description}"
})
export type SettingDecl = typeof SettingDecl.Type

export const SettingDecls = Schema.Record(SettingKey, SettingDecl)
export type SettingDecls = typeof SettingDecls.Type

export type SettingValue = string | number | boolean

/** A literal value (equality) or an integer range. */
export const Condition = Schema.Union([
  Schema.String,
  Schema.Number,
  Schema.Boolean,
  Schema.Struct({ min: Schema.optionalKey(Schema.Int), max: Schema.optionalKey(Schema.Int) })
])
export type Condition = typeof Condition.Type

/**
 * A rule between settings: whenever every `when` condition holds, every `require` condition
 * must hold too, else the change is refused with `reason`. E.g. bitcoind refuses txindex on a
 * pruned node: `{when: {txindex: true}, require: {prune: 0}, reason: ...}`.
 */
export const SettingRule = Schema.Struct({
  when: Schema.Record(SettingKey, Condition),
  require: Schema.Record(SettingKey, Condition),
  reason: Schema.NonEmptyString
})
export type SettingRule = typeof SettingRule.Type

/** The operator's choices, per app id, per setting: only what differs from "not chosen". */
export type SettingsChoices = Readonly<Record<string, Readonly<Record<string, SettingValue>>>>

// --- values --------------------------------------------------------------------------------------

// Rendered configs are line based; a control character in a value could smuggle in a line.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/

/** What a setting accepts, in words, for errors and listings. */
export const expected = (decl: SettingDecl): string => {
  switch (decl.type) {
    case "enum":
      return `one of ${decl.values.join(", ")}`
    case "bool":
      return "true or false"
    case "int": {
      const unit = decl.unit !== undefined ? ` (${decl.unit})` : ""
      if (decl.min !== undefined && decl.max !== undefined)
        return `an integer from ${decl.min} to ${decl.max}${unit}`
      if (decl.min !== undefined) return `an integer >= ${decl.min}${unit}`
      if (decl.max !== undefined) return `an integer <= ${decl.max}${unit}`
      return `an integer${unit}`
    }
    case "string": {
      const parts = ["text on one line"]
      if (decl.maxLength !== undefined) parts.push(`at most ${decl.maxLength} characters`)
      if (decl.pattern !== undefined) parts.push(`matching ${decl.pattern}`)
      return parts.join(", ")
    }
  }
}

/** Checks a typed value against its declaration; the reason when it does not fit. */
export const checkValue = (decl: SettingDecl, value: unknown): string | undefined => {
  const wrong = `expected ${expected(decl)}, got ${JSON.stringify(value)}`
  switch (decl.type) {
    case "enum":
      return typeof value === "string" && decl.values.includes(value) ? undefined : wrong
    case "bool":
      return typeof value === "boolean" ? undefined : wrong
    case "int":
      return typeof value === "number" &&
        Number.isSafeInteger(value) &&
        (decl.min === undefined || value >= decl.min) &&
        (decl.max === undefined || value <= decl.max)
        ? undefined
        : wrong
    case "string":
      if (typeof value !== "string") return wrong
      if (CONTROL.test(value)) return "expected text on one line, without control characters"
      if (decl.maxLength !== undefined && value.length > decl.maxLength)
        return `expected at most ${decl.maxLength} characters, got ${value.length}`
      if (decl.pattern !== undefined && !new RegExp(`^(?:${decl.pattern})$`).test(value)) return wrong
      return undefined
  }
}

const boolWords: Readonly<Record<string, boolean>> = {
  true: true,
  false: false,
  yes: true,
  no: false,
  on: true,
  off: false,
  "1": true,
  "0": false
}

/**
 * A value as given by an operator: typed JSON, or text from `KEY=VALUE` on the command line
 * (`"10000"` for an int, `"true"`/`"off"` for a bool). Checked against the declaration.
 */
export const parseValue = (
  decl: SettingDecl,
  raw: unknown
): { readonly value: SettingValue } | { readonly error: string } => {
  let value: unknown = raw
  if (typeof raw === "string") {
    const text = raw.trim()
    if (decl.type === "int" && /^-?[0-9]+$/.test(text)) value = Number(text)
    if (decl.type === "bool" && text.toLowerCase() in boolWords) value = boolWords[text.toLowerCase()]
  }
  const problem = checkValue(decl, value)
  return problem === undefined ? { value: value as SettingValue } : { error: problem }
}

// --- rules ---------------------------------------------------------------------------------------

export const conditionHolds = (condition: Condition, value: SettingValue): boolean =>
  typeof condition === "object"
    ? typeof value === "number" &&
      (condition.min === undefined || value >= condition.min) &&
      (condition.max === undefined || value <= condition.max)
    : condition === value

const conditionText = (key: string, condition: Condition): string =>
  typeof condition !== "object"
    ? `${key}=${String(condition)}`
    : condition.min !== undefined && condition.max !== undefined
      ? `${key} from ${condition.min} to ${condition.max}`
      : condition.min !== undefined
        ? `${key} >= ${condition.min}`
        : `${key} <= ${condition.max}`

/** The rules these values break, each as one sentence: the reason, then what clashes. */
export const brokenRules = (
  rules: ReadonlyArray<SettingRule>,
  values: Readonly<Record<string, SettingValue>>
): ReadonlyArray<string> =>
  rules.flatMap((rule) => {
    const applies = Object.entries(rule.when).every(
      ([k, c]) => values[k] !== undefined && conditionHolds(c, values[k])
    )
    if (!applies) return []
    const unmet = Object.entries(rule.require).filter(
      ([k, c]) => values[k] === undefined || !conditionHolds(c, values[k])
    )
    if (unmet.length === 0) return []
    const when = Object.entries(rule.when)
      .map(([k, c]) => conditionText(k, c))
      .join(" and ")
    const need = unmet.map(([k, c]) => `${conditionText(k, c)} (it is ${String(values[k])})`).join(" and ")
    return [`${rule.reason}: ${when} needs ${need}`]
  })

// --- effective values ----------------------------------------------------------------------------

/** One app's effective settings: the defaults overlaid with the operator's choices. */
export interface Effective {
  readonly values: Readonly<Record<string, SettingValue>>
  /** Keys whose value the operator chose (the rest are defaults). */
  readonly chosen: ReadonlyArray<string>
  /** Stored choices that no longer fit the manifest (a value removed by an upgrade, …). */
  readonly problems: ReadonlyArray<string>
}

export const effective = (
  decls: SettingDecls | undefined,
  choices: Readonly<Record<string, SettingValue>> | undefined
): Effective => {
  const values: Record<string, SettingValue> = {}
  const chosen: Array<string> = []
  const problems: Array<string> = []
  for (const [key, decl] of Object.entries(decls ?? {})) {
    values[key] = decl.default
    const choice = choices?.[key]
    if (choice === undefined) continue
    const problem = checkValue(decl, choice)
    if (problem !== undefined) problems.push(`setting ${key}: the stored value no longer fits (${problem})`)
    else {
      values[key] = choice
      chosen.push(key)
    }
  }
  // Choices for settings the manifest no longer declares are kept on disk but mean nothing.
  return { values, chosen, problems }
}

// --- references ----------------------------------------------------------------------------------

/** `settings.KEY` (this app) or `DEP.settings.KEY` (the app that is or provides DEP). */
export interface Reference {
  readonly dependency?: string
  readonly key: string
}

const REFERENCE = /\$\{([^}]*)\}/g
const WHOLE = /^\$\{([^}]*)\}$/

/** The inside of `${...}`: a reference, "shell" for a plain `${NAME}`, or undefined if malformed. */
export const parseReference = (inner: string): Reference | "shell" | undefined => {
  if (!inner.includes(".")) return "shell"
  const own = /^settings\.([A-Za-z0-9_]+)$/.exec(inner)
  if (own !== null) return { key: own[1]! }
  const dep = /^([a-z0-9][a-z0-9-]{0,62})\.settings\.([A-Za-z0-9_]+)$/.exec(inner)
  if (dep !== null) return { dependency: dep[1]!, key: dep[2]! }
  return undefined
}

/** Every `${...}` in a text, with what it parses to. */
export const referencesIn = (
  text: string
): ReadonlyArray<{ readonly raw: string; readonly ref: Reference | "shell" | undefined }> =>
  [...text.matchAll(REFERENCE)].map((m) => ({ raw: m[0], ref: parseReference(m[1]!) }))

/** Finds a referenced value; undefined when it cannot be resolved. */
export type Lookup = (ref: Reference) => SettingValue | undefined

/** Replaces references in a text; a whole-value reference keeps the setting's type. */
export const resolve = (value: SettingValue, lookup: Lookup): SettingValue => {
  if (typeof value !== "string" || !value.includes("${")) return value
  const whole = WHOLE.exec(value)
  if (whole !== null) {
    const ref = parseReference(whole[1]!)
    if (ref !== undefined && ref !== "shell") return lookup(ref) ?? value
  }
  return value.replace(REFERENCE, (raw, inner: string) => {
    const ref = parseReference(inner)
    if (ref === undefined || ref === "shell") return raw
    const found = lookup(ref)
    return found === undefined ? raw : String(found)
  })
}

export const resolveText = (value: string, lookup: Lookup): string => String(resolve(value, lookup))

export const referenceText = (ref: Reference): string =>
  ref.dependency === undefined ? `\${settings.${ref.key}}` : `\${${ref.dependency}.settings.${ref.key}}`
