/**
 * Action: one step of a plan. Each names a stable target (`container:lnd`, `file:/…/bitcoin.conf`)
 * and a cause a person can read. Interpreters (the reconciler, the dry run) carry them out or
 * print them; they never decide anything themselves.
 */
import * as Data from "effect/Data"
import type {
  DesiredContainer,
  DesiredDirectory,
  DesiredFile,
  NetworkSpec,
  ResolvedSource
} from "./Desired.ts"

interface Base {
  readonly target: string
  readonly cause: string
}

export type Action = Data.TaggedEnum<{
  EnsureNetwork: Base & { readonly network: NetworkSpec }
  EnsureSecret: Base & { readonly name: string }
  /** Create the directory (when `exists` is false) and set its mode and owner; never its contents. */
  EnsureDirectory: Base & { readonly directory: DesiredDirectory; readonly exists: boolean }
  PullImage: Base & { readonly source: ResolvedSource & { readonly _tag: "Registry" } }
  BuildImage: Base & { readonly source: ResolvedSource & { readonly _tag: "Build" } }
  WriteFile: Base & { readonly file: DesiredFile }
  Create: Base & { readonly container: DesiredContainer }
  Start: Base & { readonly name: string }
  Stop: Base & { readonly name: string; readonly timeoutSeconds: number }
  Restart: Base & { readonly name: string; readonly timeoutSeconds: number }
  Remove: Base & { readonly name: string; readonly containerId: string; readonly timeoutSeconds: number }
  /** Remove the existing container and create it anew from the current spec. */
  Recreate: Base & { readonly containerId: string; readonly container: DesiredContainer }
  /** Take over an existing container with a known name (it lacks our labels) without recreating it. */
  Adopt: Base & {
    readonly containerId: string
    readonly container: DesiredContainer
    readonly specMatches: boolean
  }
  /**
   * FM6: stop and clean a container podman's state DB lost but storage or the runtime still
   * holds (runtime kill and delete, conmon, network namespace and IP, storage), so its name can
   * be created again. Never images, volumes or app data.
   */
  CleanOrphan: Base & { readonly containerId: string; readonly name: string }
  /** Nothing to do yet; the cause says what it waits for. */
  Wait: Base
}>

export const Action = Data.taggedEnum<Action>()

export type ActionKind = Action["_tag"]

/** `EnsureNetwork` -> `ensure-network`: the kind as printed and in `--json`. */
export const kindName = (kind: ActionKind): string => kind.replace(/([a-z])([A-Z])/g, "$1-$2").toLowerCase()

/** An action as shown to people and machines: kind, target, cause; never a payload. */
export interface ActionJson {
  readonly kind: string
  readonly target: string
  readonly cause: string
}

/** The JSON shape of `archy plan --json`: no payloads, so nothing secret can leak through it. */
export const toJson = (a: Action): ActionJson => ({
  kind: kindName(a._tag),
  target: a.target,
  cause: a.cause
})

/** One action per line, aligned: `create         container:lnd    container lnd does not exist`. */
export const renderViews = (actions: ReadonlyArray<ActionJson>): string => {
  if (actions.length === 0) return "nothing to do: the node matches its manifests\n"
  const kindWidth = Math.max(...actions.map((a) => a.kind.length))
  const targetWidth = Math.max(...actions.map((a) => a.target.length))
  return actions
    .map((a) => `${a.kind.padEnd(kindWidth)}  ${a.target.padEnd(targetWidth)}  ${a.cause}\n`)
    .join("")
}

export const renderText = (actions: ReadonlyArray<Action>): string => renderViews(actions.map(toJson))
