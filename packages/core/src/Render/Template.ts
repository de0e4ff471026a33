/**
 * Config files written from a template file next to the manifest: the one generic renderer for
 * apps whose configs embed secrets (mempool's backend config, NBXplorer's and BTCPay's settings,
 * RTL's config, …), so no app needs code of its own. Placeholders:
 *
 *   {{secret:NAME}}           the canonical secret's value (NAME must be in the app's `secrets`)
 *   {{param:NAME}}            a value from the file's `params` in the manifest
 *   {{rpcauth:USER:SECRET}}   bitcoind's `rpcauth` value `USER:<salt>$<hmac>` for that secret
 *
 * each optionally followed by a filter: `|json` escapes the value for use inside a JSON string,
 * `|sha256` writes its SHA-256 in hex (RTL's `multiPassHashed`), so the app never rewrites the file.
 * Every placeholder is checked when the catalog loads (`checkTemplate`), so a packager sees an
 * unknown one as a manifest error naming the file and the line. A render either produces the
 * whole file or fails (a missing secret, a value with a control character): there is never a
 * half-filled config, and the caller writes nothing.
 */
import * as Redacted from "effect/Redacted"
import { sha256Hex } from "../Hash.ts"
import { assertSingleLine, fail } from "./Params.ts"
import type { Renderer, RenderInput } from "./Renderer.ts"
import { RenderError } from "./Renderer.ts"
import { rpcauthLine, validateRpcUser } from "./Rpcauth.ts"

/** One `{{…}}` of a template, as written. */
export interface Placeholder {
  readonly text: string
  readonly line: number
  readonly kind: "secret" | "param" | "rpcauth"
  /** The secret or param name. */
  readonly name: string
  /** rpcauth's user. */
  readonly user?: string
  readonly filter?: Filter
}

const filters = ["json", "sha256"] as const
type Filter = (typeof filters)[number]
const isFilter = (s: string | undefined): s is Filter => filters.some((f) => f === s)

const NAME = /^[a-z0-9][a-z0-9-]*$/i
const USAGE =
  "expected {{secret:NAME}}, {{param:NAME}} or {{rpcauth:USER:SECRET}}, optionally followed by |json or |sha256"

/** Every placeholder of a template, and a message per malformed one (with its line). */
export const parseTemplate = (
  text: string
): { readonly placeholders: ReadonlyArray<Placeholder>; readonly problems: ReadonlyArray<string> } => {
  const placeholders: Array<Placeholder> = []
  const problems: Array<string> = []
  text.split("\n").forEach((lineText, i) => {
    const line = i + 1
    let rest = lineText
    for (let open = rest.indexOf("{{"); open >= 0; open = rest.indexOf("{{")) {
      const close = rest.indexOf("}}", open + 2)
      if (close < 0) {
        problems.push(`line ${line}: "{{" is never closed with "}}"`)
        return
      }
      const raw = rest.slice(open, close + 2)
      rest = rest.slice(close + 2)
      const [expr = "", filter, ...extra] = raw
        .slice(2, -2)
        .trim()
        .split("|")
        .map((s) => s.trim())
      const [kind, ...args] = expr.split(":")
      const bad = (why: string) => problems.push(`line ${line}: placeholder ${raw} ${why}`)
      if (extra.length > 0 || (filter !== undefined && !isFilter(filter))) {
        bad(`has an unknown filter (known: ${filters.map((f) => `|${f}`).join(", ")})`)
        continue
      }
      const withFilter = isFilter(filter) ? { filter } : {}
      if ((kind === "secret" || kind === "param") && args.length === 1 && NAME.test(args[0]!)) {
        placeholders.push({ text: raw, line, kind, name: args[0]!, ...withFilter })
      } else if (kind === "rpcauth" && args.length === 2 && NAME.test(args[1]!) && args[0]!.length > 0) {
        placeholders.push({ text: raw, line, kind, name: args[1]!, user: args[0]!, ...withFilter })
      } else {
        bad(`is unknown (${USAGE})`)
      }
    }
  })
  return { placeholders, problems }
}

/** The canonical secrets a template reads, sorted. */
export const templateSecrets = (placeholders: ReadonlyArray<Placeholder>): ReadonlyArray<string> =>
  [...new Set(placeholders.filter((p) => p.kind !== "param").map((p) => p.name))].sort()

/**
 * What is wrong with a template for one manifest entry: malformed or unknown placeholders,
 * secrets the app does not declare, params the entry does not give, unusable rpcauth users.
 */
export const checkTemplate = (
  text: string,
  context: {
    readonly secrets: ReadonlyArray<string>
    readonly params: Readonly<Record<string, string | number | boolean>>
  }
): ReadonlyArray<string> => {
  const { placeholders, problems } = parseTemplate(text)
  const out = [...problems]
  for (const p of placeholders) {
    const at = `line ${p.line}: placeholder ${p.text}`
    if (p.kind === "param" && !(p.name in context.params)) {
      out.push(`${at} names param "${p.name}", which the manifest's params do not give`)
    }
    if (p.kind !== "param" && !context.secrets.includes(p.name)) {
      out.push(`${at} names secret "${p.name}", not declared in the app's secrets`)
    }
    if (p.kind === "rpcauth") {
      try {
        validateRpcUser("template", p.user!)
      } catch (e) {
        out.push(`${at}: ${e instanceof RenderError ? e.reason : String(e)}`)
      }
    }
  }
  // In file order, as a packager reads them (every message starts "line N").
  const lineOf = (message: string) => Number(/^line (\d+)/.exec(message)?.[1] ?? 0)
  return out
    .map((message, i) => ({ message, i }))
    .sort((a, b) => lineOf(a.message) - lineOf(b.message) || a.i - b.i)
    .map((x) => x.message)
}

const applyFilter = (value: string, filter: Placeholder["filter"]): string =>
  filter === "json" ? JSON.stringify(value).slice(1, -1) : filter === "sha256" ? sha256Hex(value) : value

/**
 * The renderer for one template file. Its id names the file (`template:config.json.tmpl`), so
 * errors and plan causes say which template failed. Pure, like every renderer.
 */
export const templateRenderer = (file: string, text: string): Renderer => {
  const id = `template:${file}`
  const { placeholders, problems } = parseTemplate(text)
  const render = (input: RenderInput): string => {
    // The catalog refuses such templates; a renderer built by hand still never half-renders.
    if (problems.length > 0) fail(id, problems[0]!)
    const values = new Map<string, string>()
    for (const p of placeholders) {
      if (values.has(p.text)) continue
      let value: string
      if (p.kind === "param") {
        const v = input.params[p.name]
        value = v === undefined ? fail(id, `param "${p.name}" has no value`) : String(v)
      } else {
        const secret = input.secrets.get(p.name) ?? fail(id, `missing secret "${p.name}"`)
        if (Redacted.value(secret).length === 0) fail(id, `secret "${p.name}" is empty`)
        value =
          p.kind === "secret" ? Redacted.value(secret) : rpcauthLine(p.user!, secret).slice("rpcauth=".length)
      }
      // Never name a secret's value in an error: only which placeholder was refused.
      values.set(p.text, applyFilter(assertSingleLine(id, `the value of ${p.text}`, value), p.filter))
    }
    // A replacer function, so '$' sequences in values are never interpreted.
    return text.replace(/\{\{[^}]*\}\}/g, (raw) => values.get(raw) ?? fail(id, `no value for ${raw}`))
  }
  return {
    id,
    description: `the template ${file} next to the manifest`,
    secrets: templateSecrets(placeholders),
    render
  }
}
