/**
 * plan(desired, observed, { now }) -> Action[]: the whole decision logic of the orchestrator,
 * as one pure function. No services, no clock (`now` is an input), no randomness; the same
 * inputs always give the same actions in the same order.
 *
 * Shape of a plan:
 *   1. node-wide prerequisites: the network, canonical secrets, images;
 *   2. teardown, in reverse dependency order: containers that are ours but no longer wanted,
 *      duplicates, and stops;
 *   3. bring-up, in dependency order, app by app: rendered files, then each container
 *      (create, adopt, recreate, start, restart after a file changed, or wait with the reason).
 *
 * Containers without our labels are never touched, except one whose name a manifest claims:
 * that one is adopted (FM1/FM3: the old scripts' containers survive a daemon restart).
 */
import { Action } from "./Action.ts"
import type { Desired, DesiredContainer, DesiredFile } from "./Desired.ts"
import { labels, type Observed, type ObservedContainer, type ObservedFile } from "./Observed.ts"

export interface PlanOptions {
  /** Epoch milliseconds; only compared with backoff deadlines. */
  readonly now: number
}

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8).padStart(3, "0")}`

const containerTarget = (name: string) => `container:${name}`

const describeState = (c: ObservedContainer): string =>
  c.state === "exited" || c.state === "stopped"
    ? `is ${c.state}${c.exitCode !== undefined ? ` (exit code ${c.exitCode})` : ""}`
    : c.state === "created" || c.state === "configured"
      ? "was created but never started"
      : `is ${c.state}`

/** Why a file must be written, or undefined when the bytes, mode and owner already match. */
const fileDrift = (
  want: DesiredFile,
  have: ObservedFile | undefined,
  secretsPending: ReadonlyArray<string>
) => {
  if (have === undefined) return "is missing"
  if (want.sha256 === undefined && secretsPending.length > 0) {
    return `will be rendered once secret ${secretsPending.join(", ")} exists`
  }
  if (have.sha256 !== want.sha256) return `differs from its render (${want.renderer})`
  if ((have.mode & 0o7777) !== want.mode) return `has mode ${octal(have.mode)}, want ${octal(want.mode)}`
  if (want.owner !== undefined && have.owner !== want.owner)
    return `is owned by ${have.owner ?? "?"}, want ${want.owner}`
  return undefined
}

export const plan = (desired: Desired, observed: Observed, options: PlanOptions): ReadonlyArray<Action> => {
  const prerequisites: Array<Action> = []
  const teardown: Array<Action> = []
  const bringUp: Array<Action> = []

  // 1. Network, secrets, images.
  const net = observed.networks.find((n) => n.name === desired.network.name)
  if (net === undefined) {
    prerequisites.push(
      Action.EnsureNetwork({
        target: `network:${desired.network.name}`,
        cause: `network ${desired.network.name} does not exist (want ${desired.network.subnet}, gateway ${desired.network.gateway})`,
        network: desired.network
      })
    )
  } else if (net.subnet !== desired.network.subnet || net.gateway !== desired.network.gateway) {
    prerequisites.push(
      Action.Wait({
        target: `network:${desired.network.name}`,
        cause: `network ${desired.network.name} has subnet ${net.subnet ?? "?"} and gateway ${net.gateway ?? "?"}, want ${desired.network.subnet} and ${desired.network.gateway}; containers on it may not reach ${desired.network.hostAlias} (recreate the network with no containers attached)`
      })
    )
  }
  const haveSecrets = new Set(observed.secrets)
  for (const name of desired.secrets) {
    if (!haveSecrets.has(name)) {
      prerequisites.push(
        Action.EnsureSecret({ target: `secret:${name}`, cause: `secret ${name} does not exist yet`, name })
      )
    }
  }
  const imageNames = new Set(observed.images.flatMap((i) => i.names))
  for (const source of desired.images) {
    if (imageNames.has(source.ref)) continue
    const target = `image:${source.ref}`
    if (source._tag === "Build") {
      prerequisites.push(Action.BuildImage({ target, cause: `image ${source.ref} is not built yet`, source }))
    } else {
      prerequisites.push(Action.PullImage({ target, cause: `image ${source.ref} is not present`, source }))
    }
  }

  // Index what runs: ours by container label, others by name.
  const ours = new Map<string, Array<ObservedContainer>>()
  const unlabeledByName = new Map<string, ObservedContainer>()
  for (const c of [...observed.containers].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const app = c.labels[labels.app]
    const name = c.labels[labels.container]
    if (app !== undefined && name !== undefined) {
      const list = ours.get(name) ?? []
      list.push(c)
      ours.set(name, list)
    } else if (app === undefined) {
      unlabeledByName.set(c.name, c)
    }
  }
  // Keep the container that carries the right name (then the oldest id); the rest are duplicates.
  for (const [name, list] of ours) {
    list.sort(
      (a, b) => Number(b.name === name) - Number(a.name === name) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
    )
  }
  const desiredContainers = new Map(
    desired.apps.flatMap((a) => a.containers.map((c) => [c.name, c] as const))
  )
  const blockedApps = new Map(
    desired.apps.filter((a) => a.blocked !== undefined).map((a) => [a.id, a.blocked!])
  )
  const kept = new Set([...desired.unmanaged, ...blockedApps.keys()])

  // 2. Teardown: ours but unwanted (never an app whose manifest fails to load or that is blocked).
  const removals: Array<Action> = []
  for (const [name, list] of [...ours].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const want = desiredContainers.get(name)
    list.forEach((c, index) => {
      const app = c.labels[labels.app]!
      if (kept.has(app)) return
      const cause =
        want === undefined
          ? desired.apps.some((a) => a.id === app)
            ? `container ${c.name} is no longer in app ${app}'s manifest`
            : `app ${app} is not installed`
          : index > 0
            ? `duplicate of container ${name} (${list[0]!.id.slice(0, 12)} is kept)`
            : undefined
      if (cause !== undefined) {
        removals.push(
          Action.Remove({
            target: containerTarget(c.name),
            cause,
            name: c.name,
            containerId: c.id,
            timeoutSeconds: 10
          })
        )
      }
    })
  }
  teardown.push(...removals)

  // 3. Bring-up, app by app in dependency order. Stops go to teardown in reverse order.
  const filesByPath = new Map(observed.files.map((f) => [f.path, f]))
  const backoff = new Map((observed.backoff ?? []).map((b) => [b.container, b]))
  const stops: Array<Action> = []
  for (const app of desired.apps) {
    const rewritten = new Set<string>()
    const unrenderable = new Map<string, string>()
    for (const file of app.files) {
      const target = `file:${file.path}`
      if (file.renderError !== undefined) {
        unrenderable.set(file.path, file.renderError)
        bringUp.push(Action.Wait({ target, cause: `cannot render: ${file.renderError}` }))
        continue
      }
      const pending = file.secrets.filter((s) => !haveSecrets.has(s))
      if (file.sha256 === undefined && pending.length === 0) {
        // The secrets exist but their values were not given to this planner (a dry run
        // without access to them): say so rather than guess.
        bringUp.push(
          Action.Wait({ target, cause: "secret values are not available here; drift cannot be checked" })
        )
        continue
      }
      const drift = fileDrift(file, filesByPath.get(file.path), pending)
      if (drift !== undefined) {
        rewritten.add(file.path)
        bringUp.push(Action.WriteFile({ target, cause: `${file.path.split("/").pop()} ${drift}`, file }))
      }
    }

    for (const want of app.containers) {
      const target = containerTarget(want.name)
      const mine = ours.get(want.name)?.[0]
      const foreign = mine === undefined ? unlabeledByName.get(want.name) : undefined
      if (app.blocked !== undefined) {
        if (mine === undefined && foreign === undefined) {
          bringUp.push(Action.Wait({ target, cause: `app ${app.id} ${app.blocked}` }))
        }
        continue
      }
      const waitingOn = want.consumes.find((p) => unrenderable.has(p))
      if (waitingOn !== undefined) {
        // Fail safe: never start a consumer on a stale or missing config.
        if (mine?.state === "running") {
          stops.push(
            Action.Stop({
              target,
              cause: `${waitingOn.split("/").pop()} cannot be rendered: ${unrenderable.get(waitingOn)}`,
              name: want.name,
              timeoutSeconds: want.spec.stopTimeoutSeconds
            })
          )
        } else {
          bringUp.push(Action.Wait({ target, cause: `waiting for ${waitingOn.split("/").pop()} to render` }))
        }
        continue
      }
      bringUp.push(...containerActions(want, mine, foreign, rewritten, filesByPath, backoff, options, stops))
    }
  }
  teardown.push(...stops.reverse())
  return [...prerequisites, ...teardown, ...bringUp]
}

const containerActions = (
  want: DesiredContainer,
  mine: ObservedContainer | undefined,
  foreign: ObservedContainer | undefined,
  rewritten: ReadonlySet<string>,
  filesOnDisk: ReadonlyMap<string, ObservedFile>,
  backoff: ReadonlyMap<string, { readonly untilMs: number; readonly reason: string }>,
  options: PlanOptions,
  stops: Array<Action>
): ReadonlyArray<Action> => {
  const target = containerTarget(want.name)
  const start = (cause: string): Action => {
    const b = backoff.get(want.name)
    return b !== undefined && b.untilMs > options.now
      ? Action.Wait({
          target,
          cause: `backing off after a crash (${b.reason}); next start in ${Math.ceil((b.untilMs - options.now) / 1000)}s`
        })
      : Action.Start({ target, cause, name: want.name })
  }

  if (mine === undefined && foreign === undefined) {
    const out: Array<Action> = [
      Action.Create({ target, cause: `container ${want.name} does not exist`, container: want })
    ]
    if (want.shouldRun) out.push(start(`container ${want.name} was just created`))
    return out
  }
  const out: Array<Action> = []
  let have: ObservedContainer
  if (mine !== undefined) {
    have = mine
  } else {
    // An unlabeled container with a name a manifest claims: adopt it, then treat it as ours.
    const found = foreign!
    const specMatches = found.image === want.spec.image
    out.push(
      Action.Adopt({
        target,
        cause: `container ${want.name} exists without our labels; adopting it`,
        containerId: found.id,
        container: want,
        specMatches
      })
    )
    have = specMatches ? { ...found, labels: { ...found.labels, [labels.specHash]: want.specHash } } : found
    if (!specMatches) {
      out.push(
        Action.Recreate({
          target,
          cause: `adopted container runs image ${found.image}, the manifest wants ${want.spec.image}`,
          containerId: found.id,
          container: want
        })
      )
      if (want.shouldRun) out.push(start(`container ${want.name} was just recreated`))
      return out
    }
  }
  const haveHash = have.labels[labels.specHash]
  if (haveHash !== want.specHash || have.name !== want.name) {
    out.push(
      Action.Recreate({
        target,
        cause:
          have.name !== want.name
            ? `container ${have.name} carries the labels of ${want.name}; recreating it under its own name`
            : `spec changed (hash ${haveHash ?? "none"} -> ${want.specHash})`,
        containerId: have.id,
        container: want
      })
    )
    if (want.shouldRun) out.push(start(`container ${want.name} was just recreated`))
    return out
  }
  if (!want.shouldRun) {
    if (have.state === "running" || have.state === "paused") {
      stops.push(
        Action.Stop({
          target,
          cause: "app is stopped by the user",
          name: want.name,
          timeoutSeconds: want.spec.stopTimeoutSeconds
        })
      )
    }
    return out
  }
  if (have.state !== "running") return [...out, start(`container ${want.name} ${describeState(have)}`)]

  // Running and current: restart it if a config it reads changed underneath it.
  const changedNow = want.consumes.find((p) => rewritten.has(p))
  const changedSince = want.consumes.find((p) => {
    const f = filesOnDisk.get(p)
    return f !== undefined && have.startedAtMs !== undefined && f.mtimeMs > have.startedAtMs
  })
  const changed = changedNow ?? changedSince
  if (changed !== undefined) {
    const file = changed.split("/").pop()
    out.push(
      Action.Restart({
        target,
        cause:
          changedNow !== undefined
            ? `${file} is being rewritten`
            : `${file} changed after the container started`,
        name: want.name,
        timeoutSeconds: want.spec.stopTimeoutSeconds
      })
    )
  }
  return out
}
