/**
 * A tiny model of a node for plan tests: applies Actions to an Observed snapshot the way a
 * correct runtime would, so property tests can check that a plan, once carried out, leaves
 * nothing to do. Secrets it "generates" are deterministic, so runs repeat exactly.
 */
import * as Redacted from "effect/Redacted"
import type { Action } from "../src/Action.ts"
import type { Catalog } from "../src/Catalog.ts"
import * as Desired from "../src/Desired.ts"
import { sha256Hex } from "../src/Hash.ts"
import { labels, type Observed, type ObservedContainer } from "../src/Observed.ts"
import { findRenderer } from "../src/Render/Renderers.ts"

export interface ModelNode {
  readonly observed: Observed
  readonly secrets: ReadonlyMap<string, Redacted.Redacted<string>>
}

export const secretValue = (name: string) => Redacted.make(`test-secret-${name}-0123456789abcdef`)

export const desiredFor = (catalog: Catalog, node: ModelNode, selection?: Desired.Selection) =>
  Desired.make({
    catalog,
    node: Desired.defaultNodeConfig,
    selection: selection ?? Desired.defaultSelection(catalog),
    secrets: node.secrets
  })

let nextId = 0
const freshId = () => `c${(nextId++).toString(16).padStart(12, "0")}`

const created = (want: Desired.DesiredContainer, id: string): ObservedContainer => ({
  id,
  name: want.name,
  image: want.spec.image,
  labels: { ...want.spec.labels, [labels.specHash]: want.specHash },
  state: "created"
})

/** Applies one action; `now` stamps starts and writes. */
export const applyAction = (node: ModelNode, action: Action, now: number): ModelNode => {
  const o = node.observed
  const withContainers = (containers: ReadonlyArray<ObservedContainer>): ModelNode => ({
    ...node,
    observed: { ...o, containers }
  })
  const update = (name: string, f: (c: ObservedContainer) => ObservedContainer) =>
    withContainers(o.containers.map((c) => (c.name === name ? f(c) : c)))
  switch (action._tag) {
    case "EnsureNetwork":
      return {
        ...node,
        observed: {
          ...o,
          networks: [
            ...o.networks,
            { name: action.network.name, subnet: action.network.subnet, gateway: action.network.gateway }
          ]
        }
      }
    case "EnsureSecret":
      return {
        observed: { ...o, secrets: [...o.secrets, action.name] },
        secrets: new Map([...node.secrets, [action.name, secretValue(action.name)]])
      }
    case "PullImage":
    case "BuildImage":
      return {
        ...node,
        observed: {
          ...o,
          images: [...o.images, { id: `img-${action.source.ref}`, names: [action.source.ref] }]
        }
      }
    case "WriteFile": {
      // Like the real writer, render with the secrets that exist by now (EnsureSecret ran first).
      const renderer = findRenderer(action.file.renderer)!
      const content =
        action.file.failSafe === true
          ? renderer.failSafe!()
          : renderer.render({
              secrets: new Map(action.file.secrets.map((s) => [s, node.secrets.get(s)!])),
              params: action.file.params
            })
      const sha256 = sha256Hex(content)
      const file = {
        path: action.file.path,
        sha256,
        mode: action.file.mode,
        ...(action.file.owner !== undefined ? { owner: action.file.owner } : {}),
        mtimeMs: now
      }
      return {
        ...node,
        observed: { ...o, files: [...o.files.filter((f) => f.path !== action.file.path), file] }
      }
    }
    case "CleanOrphan":
      return {
        ...node,
        observed: { ...o, orphans: (o.orphans ?? []).filter((x) => x.id !== action.containerId) }
      }
    case "EnsureDirectory": {
      const d = action.directory
      const dir = { path: d.path, kind: "directory" as const, mode: 0o40000 | d.mode, uid: d.uid, gid: d.gid }
      return {
        ...node,
        observed: {
          ...o,
          directories: [...(o.directories ?? []).filter((x) => x.path !== d.path), dir]
        }
      }
    }
    case "Create":
      return withContainers([...o.containers, created(action.container, freshId())])
    case "Recreate":
      return withContainers([
        ...o.containers.filter((c) => c.id !== action.containerId),
        created(action.container, freshId())
      ])
    case "Adopt":
      return withContainers(
        o.containers.map((c) =>
          c.id === action.containerId
            ? {
                ...c,
                labels: {
                  ...c.labels,
                  ...action.container.spec.labels,
                  [labels.specHash]: action.specMatches ? action.container.specHash : "adopted"
                }
              }
            : c
        )
      )
    case "Start":
    case "Restart":
      return update(action.name, (c) => {
        const { exitCode: _exit, ...rest } = c
        // The model's health checks pass at once; real ones are the daemon's business.
        return { ...rest, state: "running", startedAtMs: now, health: "healthy" }
      })
    case "Stop":
      return update(action.name, (c) => ({ ...c, state: "exited", exitCode: 0 }))
    case "Remove":
      return withContainers(o.containers.filter((c) => c.id !== action.containerId))
    case "Wait":
      return node
  }
}

/** Applies a whole plan, one millisecond per action. */
export const applyPlan = (node: ModelNode, actions: ReadonlyArray<Action>, start: number): ModelNode =>
  actions.reduce((n, a, i) => applyAction(n, a, start + i), node)
