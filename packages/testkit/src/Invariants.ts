/**
 * The safety invariants the simulation checks after every step, over the fake podman's model,
 * the in-memory disk and everything the daemon printed. Each returns the first violation it
 * finds, in words, or undefined. Pure reads: checking changes nothing.
 */
import type { Catalog } from "@archy/core/Catalog"
import * as Desired from "@archy/core/Desired"
import { labels } from "@archy/core/Observed"
import * as Redacted from "effect/Redacted"
import type { World } from "./FakePodman.ts"
import { type Disk, peekFile } from "./MemoryFileSystem.ts"

export interface Violation {
  readonly invariant: string
  readonly detail: string
}

export interface CheckContext {
  readonly world: World
  readonly disk: Disk
  readonly catalog: Catalog
  readonly node: Desired.NodeConfig
  readonly selection: Desired.Selection
  /** JSON state files the engine writes atomically (adoption records, the selection). */
  readonly jsonFiles: ReadonlyArray<string>
  /** Log and trace lines to check (those new since the last check). */
  readonly logs: ReadonlyArray<string>
  /** Mutations already checked (the index of the first new one). */
  readonly mutationsChecked: number
}

const secretShape = /^[A-Za-z0-9_-]{43}\n$/

/** The canonical secrets on disk, by name: complete ones only (a torn one is reported elsewhere). */
export const secretsOnDisk = (disk: Disk, secretsDir: string): ReadonlyMap<string, string> => {
  const out = new Map<string, string>()
  const prefix = `${secretsDir}/`
  for (const [path, node] of disk.nodes) {
    if (node.type !== "File" || !path.startsWith(prefix) || path.slice(prefix.length).includes("/")) continue
    const name = path.slice(prefix.length)
    if (name.startsWith(".")) continue
    const text = new TextDecoder().decode(node.bytes)
    if (secretShape.test(text)) out.set(name, text.trim())
  }
  return out
}

const desiredCache = new WeakMap<Catalog, { readonly key: string; readonly desired: Desired.Desired }>()

/** Desired as the engine would derive it from what is on disk now (cached while the secrets stay). */
export const desiredFromDisk = (ctx: Pick<CheckContext, "disk" | "catalog" | "node" | "selection">) => {
  const values = secretsOnDisk(ctx.disk, ctx.node.secretsDir)
  const key = JSON.stringify([ctx.node, ctx.selection, [...values]])
  const cached = desiredCache.get(ctx.catalog)
  if (cached?.key === key) return cached.desired
  const secrets = new Map([...values].map(([k, v]) => [k, Redacted.make(v)] as const))
  const desired = Desired.make({ catalog: ctx.catalog, node: ctx.node, selection: ctx.selection, secrets })
  desiredCache.set(ctx.catalog, { key, desired })
  return desired
}

/** Never two containers for one container name, by name or by our label (hidden ones count). */
export const oneContainerPerName = (world: World): Violation | undefined => {
  const byName = new Map<string, number>()
  const byLabel = new Map<string, number>()
  for (const c of world.containers) {
    byName.set(c.name, (byName.get(c.name) ?? 0) + 1)
    const label = c.labels[labels.container]
    if (label !== undefined) byLabel.set(label, (byLabel.get(label) ?? 0) + 1)
  }
  for (const [name, n] of byName)
    if (n > 1) return { invariant: "one-container-per-name", detail: `${n} containers are named ${name}` }
  for (const [name, n] of byLabel)
    if (n > 1)
      return { invariant: "one-container-per-name", detail: `${n} containers carry the label of ${name}` }
  return undefined
}

/**
 * A container without our labels is touched only when a manifest claims its name (adoption);
 * any other is somebody else's.
 */
export const foreignUntouched = (ctx: CheckContext): Violation | undefined => {
  const claimed = new Set(ctx.catalog.apps.flatMap((a) => a.manifest.containers.map((c) => c.name)))
  for (const m of ctx.world.mutations.slice(ctx.mutationsChecked)) {
    if (m.labels[labels.app] === undefined && !claimed.has(m.name))
      return {
        invariant: "foreign-untouched",
        detail: `${m.call} reached ${m.name} (${m.id}), which has no labels of ours and no manifest claims`
      }
  }
  return undefined
}

/** No secret value in any container's env, args or labels, nor in any log line or error. */
export const noSecretLeak = (ctx: CheckContext): Violation | undefined => {
  const secrets = secretsOnDisk(ctx.disk, ctx.node.secretsDir)
  for (const [name, value] of secrets) {
    for (const c of ctx.world.containers) {
      const where = c.env.some((e) => e.includes(value))
        ? "env"
        : c.args.some((a) => a.includes(value))
          ? "args"
          : Object.entries(c.labels).some(([k, v]) => k.includes(value) || v.includes(value))
            ? "labels"
            : undefined
      if (where !== undefined)
        return {
          invariant: "no-secret-leak",
          detail: `secret ${name} is in the ${where} of container ${c.name}`
        }
    }
    const line = ctx.logs.find((l) => l.includes(value))
    if (line !== undefined)
      return {
        invariant: "no-secret-leak",
        detail: `secret ${name} is in a log line: ${line.replaceAll(value, "<the secret>").slice(0, 200)}`
      }
  }
  return undefined
}

/**
 * Every file the engine writes is absent or complete: a rendered config is exactly its render, a
 * secret is a whole secret, a JSON state file parses.
 */
export const noTornFile = (ctx: CheckContext): Violation | undefined => {
  const prefix = `${ctx.node.secretsDir}/`
  for (const [path, node] of ctx.disk.nodes) {
    if (node.type !== "File" || !path.startsWith(prefix)) continue
    const name = path.slice(prefix.length)
    if (name.startsWith(".")) continue
    if (!secretShape.test(new TextDecoder().decode(node.bytes)))
      return {
        invariant: "no-torn-file",
        detail: `secret file ${path} holds ${node.bytes.length} bytes, not a whole secret`
      }
  }
  for (const path of ctx.jsonFiles) {
    const f = peekFile(ctx.disk, path)
    if (f === undefined) continue
    try {
      JSON.parse(new TextDecoder().decode(f.bytes))
    } catch {
      return { invariant: "no-torn-file", detail: `${path} holds ${f.bytes.length} bytes of broken JSON` }
    }
  }
  const desired = desiredFromDisk(ctx)
  for (const app of desired.apps) {
    for (const file of app.files) {
      const f = peekFile(ctx.disk, file.path)
      if (f === undefined) continue
      const text = new TextDecoder().decode(f.bytes)
      if (file.content === undefined)
        return {
          invariant: "no-torn-file",
          detail: `${file.path} exists before the secrets it is rendered from`
        }
      const want = Redacted.value(file.content)
      if (text !== want)
        return {
          invariant: "no-torn-file",
          detail: `${file.path} holds ${f.bytes.length} bytes that are not its render (${new TextEncoder().encode(want).length} bytes)`
        }
    }
  }
  return undefined
}

/** All safety invariants, the first violation first. */
export const check = (ctx: CheckContext): Violation | undefined =>
  oneContainerPerName(ctx.world) ?? foreignUntouched(ctx) ?? noSecretLeak(ctx) ?? noTornFile(ctx)
