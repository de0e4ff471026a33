/**
 * plan(desired, observed, { now }) -> Action[]: the whole decision logic of the orchestrator,
 * as one pure function. No services, no clock (`now` is an input), no randomness; the same
 * inputs always give the same actions in the same order.
 *
 * Shape of a plan:
 *   1. node-wide prerequisites: orphans podman's state DB lost (FM6) cleaned, the network,
 *      canonical secrets, images;
 *   2. teardown, in reverse dependency order: containers that are ours but no longer wanted,
 *      duplicates, and stops;
 *   3. bring-up, in dependency order, app by app: rendered files, then each container
 *      (create, adopt, recreate, start, restart after a file changed, or wait with the reason).
 *
 * Containers without our labels are never touched, except one whose name a manifest claims:
 * that one is adopted (FM1/FM3: the old scripts' containers survive a daemon restart).
 */
import { Action } from "./Action.ts"
import type { Desired, DesiredContainer, DesiredDirectory, DesiredFile } from "./Desired.ts"
import {
  labels,
  type Observed,
  type ObservedContainer,
  type ObservedDirectory,
  type ObservedFile
} from "./Observed.ts"

export interface PlanOptions {
  /** Epoch milliseconds; only compared with backoff deadlines. */
  readonly now: number
}

/** Seconds a container's label says it needs to stop; 30 for containers made before the label. */
const stopTimeoutOf = (c: ObservedContainer): number => {
  const n = Number(c.labels[labels.stopTimeout])
  return Number.isInteger(n) && n >= 0 ? n : 30
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

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

/**
 * What one desired directory needs: creating, or its mode or owner set, or nothing. Only the
 * directory itself: its contents are the app's data, never chowned or chmodded recursively (a
 * recursive chown of a node's block files would take hours and undo what the app chose). Nothing
 * here ever deletes a directory.
 */
const directoryAction = (want: DesiredDirectory, have: ObservedDirectory | undefined): Action | undefined => {
  const target = `dir:${want.path}`
  const owner = `${want.uid}:${want.gid}`
  if (have === undefined) {
    return Action.EnsureDirectory({
      target,
      cause: `${want.shown} does not exist (${want.purpose}; want ${octal(want.mode)}, owner ${owner})`,
      directory: want,
      exists: false
    })
  }
  if (have.kind !== "directory") {
    return Action.Wait({
      target,
      cause: `${want.shown} is ${have.kind === "symlink" ? "a symbolic link" : "not a directory"}; it is never followed or replaced: move it away (${want.purpose})`
    })
  }
  const modeDrift = (have.mode & 0o7777) !== want.mode
  const ownerDrift = have.uid !== want.uid || have.gid !== want.gid
  if (!modeDrift && !ownerDrift) return undefined
  const is = [
    ...(modeDrift ? [octal(have.mode)] : []),
    ...(ownerDrift ? [`owned by ${have.uid}:${have.gid}`] : [])
  ].join(" ")
  const wants = [...(modeDrift ? [octal(want.mode)] : []), ...(ownerDrift ? [`owned by ${owner}`] : [])].join(
    " "
  )
  return Action.EnsureDirectory({
    target,
    cause: `${want.shown} is ${is}, want ${wants}`,
    directory: want,
    exists: true
  })
}

export const plan = (desired: Desired, observed: Observed, options: PlanOptions): ReadonlyArray<Action> => {
  const prerequisites: Array<Action> = []
  const teardown: Array<Action> = []
  const bringUp: Array<Action> = []

  // 1. Orphans first: until they are gone their names cannot be created again.
  for (const o of [...(observed.orphans ?? [])].sort((a, b) => compare(a.name, b.name))) {
    prerequisites.push(
      Action.CleanOrphan({
        target: containerTarget(o.name),
        cause: `podman's state DB does not list container ${o.name} (${o.id.slice(0, 12)}), but its ${o.detail}`,
        containerId: o.id,
        name: o.name
      })
    )
  }
  // The node's directories (secrets live in one), network, secrets, images.
  // A snapshot without directories did not look at them: nothing is known, nothing planned.
  const dirsObserved = observed.directories !== undefined
  const dirsByPath = new Map<string, ObservedDirectory>()
  for (const d of observed.directories ?? []) dirsByPath.set(d.path, d)
  for (const dir of dirsObserved ? desired.directories : []) {
    const action = directoryAction(dir, dirsByPath.get(dir.path))
    if (action !== undefined) prerequisites.push(action)
  }
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
  const imageNames = new Set<string>()
  for (const image of observed.images) for (const n of image.names) imageNames.add(n)
  for (const source of desired.images) {
    if (imageNames.has(source.ref)) continue
    const target = `image:${source.ref}`
    if (source._tag === "Build") {
      prerequisites.push(Action.BuildImage({ target, cause: `image ${source.ref} is not built yet`, source }))
    } else {
      prerequisites.push(Action.PullImage({ target, cause: `image ${source.ref} is not present`, source }))
    }
  }

  // Index what runs: ours by container label, others by name. Almost every name has exactly
  // one container, so duplicates live in a side map instead of an array per name.
  const ours = new Map<string, ObservedContainer>()
  const duplicates = new Map<string, Array<ObservedContainer>>()
  const unlabeledByName = new Map<string, ObservedContainer>()
  for (const c of observed.containers) {
    const app = c.labels[labels.app]
    const name = c.labels[labels.container]
    if (app !== undefined && name !== undefined) {
      const first = ours.get(name)
      if (first === undefined) ours.set(name, c)
      else duplicates.set(name, [...(duplicates.get(name) ?? [first]), c])
    } else if (app === undefined) {
      unlabeledByName.set(c.name, c)
    }
  }
  // Keep the container that carries the right name (then the oldest id); the rest are duplicates.
  for (const [name, list] of duplicates) {
    list.sort((a, b) => Number(b.name === name) - Number(a.name === name) || compare(a.id, b.id))
    ours.set(name, list[0]!)
  }
  const kept = new Set(desired.unmanaged)
  for (const app of desired.apps) if (app.blocked !== undefined) kept.add(app.id)
  // Names that still have duplicates to remove once bring-up has claimed the keeper, and how
  // many of `ours` bring-up claimed: when that is all of them, nothing is left to remove.
  const duplicated: Array<string> = []
  let claimed = 0

  // 2. Bring-up, app by app in dependency order. Stops go to teardown in reverse order.
  // Each desired container claims its observed one in `ours`; the unclaimed are unwanted.
  const filesByPath = new Map<string, ObservedFile>()
  for (const f of observed.files) filesByPath.set(f.path, f)
  const backoff = new Map((observed.backoff ?? []).map((b) => [b.container, b]))
  const stops: Array<Action> = []
  // Node-wide, since a file's consumers may live in another (dependent, so later) app.
  const rewritten = new Set<string>()
  const unrenderable = new Map<string, string>()
  const ctx: BringUpContext = {
    now: options.now,
    backoff,
    ours,
    starting: new Set(),
    rewritten,
    filesOnDisk: filesByPath,
    stops,
    healthGates: new Set(
      desired.apps.flatMap((a) =>
        a.containers.flatMap((c) =>
          c.waitsFor.filter((g) => g.condition === "healthy").map((g) => g.container)
        )
      )
    )
  }
  for (const app of desired.apps) {
    // Before the files written into them and the containers that mount them.
    for (const dir of dirsObserved ? app.directories : []) {
      const action = directoryAction(dir, dirsByPath.get(dir.path))
      if (action !== undefined) bringUp.push(action)
    }
    for (const file of app.files) {
      const target = `file:${file.path}`
      if (file.renderError !== undefined && file.failSafe === true) {
        // Never stale credentials: the fail-safe config replaces the file and its consumers run
        // on it (bitcoin-ui answers 404) until the real one can be rendered.
        const drift = fileDrift(file, filesByPath.get(file.path), [])
        if (drift !== undefined) {
          rewritten.add(file.path)
          bringUp.push(
            Action.WriteFile({
              target,
              cause: `${file.path.split("/").pop()} cannot be rendered (${file.renderError}): writing its fail-safe`,
              file
            })
          )
        }
        continue
      }
      if (file.renderError !== undefined) {
        unrenderable.set(file.path, file.renderError)
        bringUp.push(Action.Wait({ target, cause: `cannot render: ${file.renderError}` }))
        continue
      }
      const pending = file.sha256 === undefined ? file.secrets.filter((s) => !haveSecrets.has(s)) : []
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
      const mine = ours.get(want.name)
      if (mine !== undefined) {
        claimed++
        if (duplicates.size > 0 && duplicates.has(want.name)) duplicated.push(want.name)
      }
      const foreign = mine === undefined ? unlabeledByName.get(want.name) : undefined
      if (app.blocked !== undefined) {
        if (mine === undefined && foreign === undefined) {
          bringUp.push(
            Action.Wait({ target: containerTarget(want.name), cause: `app ${app.id} ${app.blocked}` })
          )
        }
        continue
      }
      const waitingOn = unrenderable.size === 0 ? undefined : want.consumes.find((p) => unrenderable.has(p))
      if (waitingOn !== undefined) {
        const target = containerTarget(want.name)
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
      containerActions(bringUp, want, mine, foreign, ctx)
    }
  }
  // 3. Teardown: ours but unwanted (never an app whose manifest fails to load or that is
  // blocked). Only the (usually empty) list of removals is sorted, never every container:
  // podman lists in no useful order, and sorting the whole node each pass costs more than
  // planning it.
  const removals: Array<Action & { readonly _tag: "Remove" }> = []
  const remove = (c: ObservedContainer, cause: string) => {
    if (kept.has(c.labels[labels.app]!)) return
    removals.push(
      Action.Remove({
        target: containerTarget(c.name),
        cause,
        name: c.name,
        containerId: c.id,
        // The grace it was created with: bitcoind flushing its UTXO cache must not be cut short.
        timeoutSeconds: stopTimeoutOf(c)
      })
    )
  }
  if (claimed < ours.size) {
    const installed = new Set(desired.apps.map((a) => a.id))
    const wanted = new Set(desired.apps.flatMap((a) => a.containers.map((c) => c.name)))
    for (const [name, first] of ours) {
      if (wanted.has(name)) continue
      for (const c of duplicates.get(name) ?? [first]) {
        const app = c.labels[labels.app]!
        remove(
          c,
          installed.has(app)
            ? `container ${c.name} is no longer in app ${app}'s manifest`
            : `app ${app} is not installed`
        )
      }
    }
  }
  for (const name of duplicated) {
    const [keeper, ...rest] = duplicates.get(name)!
    for (const c of rest) remove(c, `duplicate of container ${name} (${keeper!.id.slice(0, 12)} is kept)`)
  }
  removals.sort((a, b) => compare(a.name, b.name) || compare(a.containerId, b.containerId))
  teardown.push(...removals)
  teardown.push(...stops.reverse())
  return [...prerequisites, ...teardown, ...bringUp]
}

/** What deciding one container needs to know about the rest of the node and the plan so far. */
interface BringUpContext {
  readonly now: number
  readonly backoff: ReadonlyMap<string, { readonly untilMs: number; readonly reason: string }>
  /** Our containers by their container label. */
  readonly ours: ReadonlyMap<string, ObservedContainer>
  /** Containers this plan starts (so a `started` dependency later in the plan is satisfied). */
  readonly starting: Set<string>
  readonly rewritten: ReadonlySet<string>
  readonly filesOnDisk: ReadonlyMap<string, ObservedFile>
  readonly stops: Array<Action>
  /** Containers some dependant waits on to be healthy. */
  readonly healthGates: ReadonlySet<string>
}

/** Why `want` may not start yet (a dependency not running or not healthy), or undefined. */
const gateCause = (want: DesiredContainer, ctx: BringUpContext): string | undefined => {
  for (const gate of want.waitsFor) {
    const dep = ctx.ours.get(gate.container)
    const startingNow = ctx.starting.has(gate.container)
    if (gate.condition === "started") {
      if (startingNow || dep?.state === "running") continue
      return `waiting for ${gate.because} to run (${gate.container} ${dep === undefined ? "does not exist yet" : describeState(dep)})`
    }
    if (!startingNow && dep?.state === "running" && dep.health === "healthy") continue
    const now =
      startingNow || dep === undefined
        ? "is being started"
        : dep.state !== "running"
          ? describeState(dep)
          : dep.health === undefined
            ? "has not passed a health check yet"
            : `is ${dep.health}`
    return `waiting for ${gate.because} to be healthy (${gate.container} ${now})`
  }
  return undefined
}

/** Start, or wait: for a dependency (the manifest's gates) or out a crash backoff, with the reason. */
const startOrWait = (want: DesiredContainer, cause: string, ctx: BringUpContext): Action => {
  const target = containerTarget(want.name)
  const gate = gateCause(want, ctx)
  if (gate !== undefined) return Action.Wait({ target, cause: gate })
  const b = ctx.backoff.get(want.name)
  if (b !== undefined && b.untilMs > ctx.now) {
    return Action.Wait({
      target,
      cause: `backing off after a crash (${b.reason}); next start in ${Math.ceil((b.untilMs - ctx.now) / 1000)}s`
    })
  }
  ctx.starting.add(want.name)
  return Action.Start({ target, cause, name: want.name })
}

/** Appends to `out` what one desired container needs; stops go to `stops` (teardown). */
const containerActions = (
  out: Array<Action>,
  want: DesiredContainer,
  mine: ObservedContainer | undefined,
  foreign: ObservedContainer | undefined,
  ctx: BringUpContext
): void => {
  if (mine === undefined && foreign === undefined) {
    const gate = want.shouldRun ? gateCause(want, ctx) : undefined
    if (gate !== undefined) {
      out.push(Action.Wait({ target: containerTarget(want.name), cause: gate }))
      return
    }
    out.push(
      Action.Create({
        target: containerTarget(want.name),
        cause: `container ${want.name} does not exist`,
        container: want
      })
    )
    if (want.shouldRun) out.push(startOrWait(want, `container ${want.name} was just created`, ctx))
    return
  }
  let have: ObservedContainer
  if (mine !== undefined) {
    have = mine
  } else {
    // An unlabeled container with a name a manifest claims: adopt it, then treat it as ours.
    const found = foreign!
    const target = containerTarget(want.name)
    // podman runs only the health check a container was created with, and this one was not
    // created from our manifest: if dependants wait for it to pass ours, it must be recreated,
    // or they would wait forever.
    const lacksGateCheck = want.spec.health !== undefined && ctx.healthGates.has(want.name)
    const specMatches = found.image === want.spec.image && !lacksGateCheck
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
          cause:
            found.image !== want.spec.image
              ? `adopted container runs image ${found.image}, the manifest wants ${want.spec.image}`
              : "adopted container lacks the manifest's health check that its dependants wait for (podman runs only the check a container was created with)",
          containerId: found.id,
          container: want
        })
      )
      if (want.shouldRun) out.push(startOrWait(want, `container ${want.name} was just recreated`, ctx))
      return
    }
  }
  const haveHash = have.labels[labels.specHash]
  if (haveHash !== want.specHash || have.name !== want.name) {
    out.push(
      Action.Recreate({
        target: containerTarget(want.name),
        cause:
          have.name !== want.name
            ? `container ${have.name} carries the labels of ${want.name}; recreating it under its own name`
            : `spec changed (hash ${haveHash ?? "none"} -> ${want.specHash})`,
        containerId: have.id,
        container: want
      })
    )
    if (want.shouldRun) out.push(startOrWait(want, `container ${want.name} was just recreated`, ctx))
    return
  }
  if (!want.shouldRun) {
    if (have.state === "running" || have.state === "paused") {
      ctx.stops.push(
        Action.Stop({
          target: containerTarget(want.name),
          cause: "app is stopped by the user",
          name: want.name,
          timeoutSeconds: want.spec.stopTimeoutSeconds
        })
      )
    }
    return
  }
  if (have.state !== "running") {
    // A container that ran and exited comes back only as its restart policy allows.
    const exited = (have.state === "exited" || have.state === "stopped") && have.startedAtMs !== undefined
    const policy = want.restart?.policy ?? "always"
    if (exited && (policy === "never" || (policy === "on-failure" && have.exitCode === 0))) {
      out.push(
        Action.Wait({
          target: containerTarget(want.name),
          cause: `${describeState(have).replace(/^is /, "")}; its restart policy is ${policy}`
        })
      )
      return
    }
    out.push(startOrWait(want, `container ${want.name} ${describeState(have)}`, ctx))
    return
  }

  // Running and current: restart it if a config it reads changed underneath it.
  let changedNow: string | undefined
  let changedSince: string | undefined
  for (const p of want.consumes) {
    if (changedNow === undefined && ctx.rewritten.has(p)) changedNow = p
    const f = ctx.filesOnDisk.get(p)
    // podman reports start times in whole seconds: only a change a full second after the
    // reported start is surely later than the real start.
    if (
      changedSince === undefined &&
      f !== undefined &&
      have.startedAtMs !== undefined &&
      f.mtimeMs >= have.startedAtMs + 1000
    ) {
      changedSince = p
    }
  }
  const changed = changedNow ?? changedSince
  if (changed !== undefined) {
    const file = changed.split("/").pop()
    out.push(
      Action.Restart({
        target: containerTarget(want.name),
        cause:
          changedNow !== undefined
            ? `${file} is being rewritten`
            : `${file} changed after the container started`,
        name: want.name,
        timeoutSeconds: want.spec.stopTimeoutSeconds
      })
    )
  }
}
