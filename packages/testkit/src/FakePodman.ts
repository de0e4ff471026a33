/**
 * A fake podman 4.3 behind the real `PodmanRuntime` port, for the simulation: a model of
 * containers (name, id, labels, image, state, exit code, restart count, restart policy), images,
 * networks, health checks and events, with seeded faults at every call. It owns the model (which
 * outlives a daemon crash) and the record of every mutating call; it does not decide when faults
 * fire (`Faults` does) nor what counts as a violation (`Invariants` does).
 *
 * Behaviour follows the adapters' contract (`packages/podman/test/contract.ts`): starting a
 * running container, stopping a stopped one and removing a missing one are fine; a taken name is
 * `NameInUse`, a missing image `ImageMissing`. conmon restarts a container whose process exits
 * when its policy says so, at once (podman 4.3 has no backoff); `stop` never triggers it. A
 * container the state DB lost is listed nowhere and answers to nothing, but keeps its name.
 */
import type { ContainerState, ObservedContainer } from "@archy/core/Observed"
import { createLabels } from "@archy/podman/ContainerCreate"
import { defaultTimeoutMs } from "@archy/podman/LibpodApi"
import {
  type ContainerDetails,
  type HealthcheckResult,
  ImageMissing,
  NameInUse,
  NoSuchContainer,
  PodmanRuntime,
  PodmanUnreachable,
  type RuntimeAction,
  RuntimeError,
  type RuntimeEvent,
  type RuntimeSnapshot,
  RuntimeTimeout,
  UnexpectedOutput
} from "@archy/podman/PodmanRuntime"
import { PodmanState } from "@archy/podman/PodmanState"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import * as Stream from "effect/Stream"
import type { Faults } from "./Faults.ts"
import { ProcessCrash } from "./MemoryFileSystem.ts"
import type { Prng } from "./Prng.ts"

export type RestartPolicy = "no" | "always" | "on-failure"

export interface FakeContainer {
  readonly id: string
  readonly name: string
  readonly image: string
  readonly labels: Readonly<Record<string, string>>
  state: ContainerState
  exitCode?: number
  startedAtMs?: number
  restartCount: number
  readonly restartPolicy: RestartPolicy
  /** Forgotten by the state DB: in no list, answers to nothing, still holds its name. */
  hidden: boolean
  readonly env: ReadonlyArray<string>
  readonly args: ReadonlyArray<string>
  readonly hasHealthcheck: boolean
  /** How long after a start its health check first passes (bitcoind loading its index). */
  readonly readyAfterMs: number
}

/** One call that changed, or tried to change, an existing container. */
export interface Mutation {
  readonly atMs: number
  readonly call: string
  readonly id: string
  readonly name: string
  /** The container's labels when the call reached it. */
  readonly labels: Readonly<Record<string, string>>
}

export interface FakeImage {
  readonly id: string
  readonly names: ReadonlyArray<string>
}

/** The node as podman holds it. Outlives daemon crashes. */
export interface World {
  readonly containers: Array<FakeContainer>
  readonly images: Array<FakeImage>
  readonly networks: Array<{ readonly name: string; readonly subnet: string; readonly gateway: string }>
  readonly mutations: Array<Mutation>
  nextId: number
}

/** Whether the daemon process is alive; a crash (at any call) sets it false until the restart. */
export interface ProcessState {
  alive: boolean
}

export const makeWorld = (): World => ({ containers: [], images: [], networks: [], mutations: [], nextId: 1 })

export interface FakePodmanOptions {
  readonly world: World
  readonly prng: Prng
  readonly faults: Faults
  readonly process: ProcessState
  readonly events: PubSub.PubSub<RuntimeEvent>
  /** One line per notable thing (a fault fired, conmon restarted something). */
  readonly trace: (line: string) => void
}

const err = (reason: RuntimeError["reason"]) => new RuntimeError({ reason })

const hexId = (n: number) => n.toString(16).padStart(12, "0")

/** podman reports start times in whole seconds. */
const seconds = (ms: number) => Math.floor(ms / 1000) * 1000

export const toObserved = (c: FakeContainer): ObservedContainer => ({
  id: c.id,
  name: c.name,
  image: c.image,
  labels: c.labels,
  state: c.state,
  ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
  ...(c.startedAtMs !== undefined ? { startedAtMs: seconds(c.startedAtMs) } : {})
})

/** The model's operations that need no port: chaos from outside the daemon, and lookups. */
export const makeDriver = (options: FakePodmanOptions) => {
  const { world, prng, events, trace } = options
  const visible = (name: string) => world.containers.find((c) => c.name === name && !c.hidden)
  const holder = (name: string) => world.containers.find((c) => c.name === name)
  const publish = (action: string, c: FakeContainer, nowMs: number) => {
    if (options.faults.fire("events.lost")) {
      trace(`fault events.lost: ${action} ${c.name}`)
      return
    }
    PubSub.publishUnsafe(events, { type: "container", action, id: c.id, name: c.name, timeMs: nowMs })
  }
  const start = (c: FakeContainer, nowMs: number) => {
    c.state = "running"
    c.startedAtMs = nowMs
    delete c.exitCode
    publish("start", c, nowMs)
  }
  /** The container's process exits by itself; conmon restarts it as its policy says. */
  const die = (c: FakeContainer, exitCode: number, nowMs: number) => {
    c.state = "exited"
    c.exitCode = exitCode
    publish("died", c, nowMs)
    if (c.restartPolicy === "always" || (c.restartPolicy === "on-failure" && exitCode !== 0)) {
      c.restartCount++
      trace(`conmon restarts ${c.name} (policy ${c.restartPolicy})`)
      start(c, nowMs)
    }
  }
  const create = (
    spec: {
      readonly name: string
      readonly image: string
      readonly labels: Readonly<Record<string, string>>
      readonly env: ReadonlyArray<string>
      readonly args: ReadonlyArray<string>
      readonly hasHealthcheck: boolean
      readonly restartPolicy: RestartPolicy
    },
    nowMs: number
  ): FakeContainer => {
    const c: FakeContainer = {
      ...spec,
      id: hexId(world.nextId++),
      state: "created",
      restartCount: 0,
      hidden: false,
      readyAfterMs: prng.int(4) * 1000
    }
    world.containers.push(c)
    publish("create", c, nowMs)
    return c
  }
  return { visible, holder, publish, start, die, create }
}

export type Driver = ReturnType<typeof makeDriver>

/**
 * The gate every call of the fake goes through: a dead daemon does nothing; faults fire before
 * or after the effect.
 */
const makeCaller = (options: FakePodmanOptions) => {
  const { prng, faults, process, trace } = options
  let calls = 0
  const randomReason = (operation: string, target: string): RuntimeError["reason"] => {
    switch (prng.int(6)) {
      case 0:
        return new PodmanUnreachable({ endpoint: "fake", detail: "connection refused" })
      case 1:
        return new NoSuchContainer({ container: target })
      case 2:
        return new NameInUse({ container: target })
      case 3:
        return new ImageMissing({ image: target, detail: "simulated" })
      case 4:
        return new RuntimeTimeout({ operation, afterMs: defaultTimeoutMs })
      default:
        return new UnexpectedOutput({ operation, detail: "simulated garbage" })
    }
  }

  /** Every call goes through here: a dead daemon does nothing; faults fire before or after the effect. */
  const call = <A>(
    operation: string,
    target: string,
    body: Effect.Effect<A, RuntimeError>
  ): Effect.Effect<A, RuntimeError> =>
    Effect.suspend((): Effect.Effect<A, RuntimeError> => {
      if (!process.alive) return Effect.die(new ProcessCrash(`${operation} ${target} after the crash`))
      calls++
      if (faults.fire("podman.crash")) {
        process.alive = false
        const after = prng.chance(0.5)
        trace(`fault podman.crash: ${operation} ${target} (${after ? "after" : "before"} podman acted)`)
        const crash = Effect.die(new ProcessCrash(`${operation} ${target}`))
        return after ? Effect.andThen(Effect.ignore(body), crash) : crash
      }
      if (faults.fire("podman.error")) {
        const reason = randomReason(operation, target)
        trace(`fault podman.error: ${operation} ${target}: ${reason._tag}`)
        return Effect.fail(err(reason))
      }
      if (faults.fire("podman.hang")) {
        const after = prng.chance(0.5)
        trace(`fault podman.hang: ${operation} ${target} (${after ? "after" : "before"} podman acted)`)
        // The adapter's own timeout ends the wait, as LibpodRuntime's request timeout does.
        const hang = Effect.never.pipe(
          Effect.timeoutOrElse({
            duration: defaultTimeoutMs,
            orElse: () => Effect.fail(err(new RuntimeTimeout({ operation, afterMs: defaultTimeoutMs })))
          })
        )
        return after ? Effect.andThen(Effect.ignore(body), hang) : hang
      }
      if (faults.fire("podman.lostReply")) {
        trace(`fault podman.lostReply: ${operation} ${target}`)
        return Effect.andThen(
          Effect.ignore(body),
          Effect.fail(err(new RuntimeTimeout({ operation, afterMs: defaultTimeoutMs })))
        )
      }
      return body
    })

  return { call, calls: () => calls }
}

/** The port over the model. */
export const make = (options: FakePodmanOptions): PodmanRuntime["Service"] => {
  const { world } = options
  const driver = makeDriver(options)
  const { call, calls } = makeCaller(options)
  const { faults, trace } = options

  const record = (operation: string, c: FakeContainer, nowMs: number) =>
    world.mutations.push({ atMs: nowMs, call: operation, id: c.id, name: c.name, labels: c.labels })

  const withNow = <A>(f: (nowMs: number) => Effect.Effect<A, RuntimeError>) =>
    Effect.flatMap(Clock.currentTimeMillis, f)

  const removeContainer = (idOrName: string, nowMs: number, operation: string) => {
    const i = world.containers.findIndex((c) => !c.hidden && (c.id === idOrName || c.name === idOrName))
    if (i < 0) return // podman: removing a missing container is fine
    const c = world.containers[i]!
    record(operation, c, nowMs)
    world.containers.splice(i, 1)
    driver.publish("remove", c, nowMs)
  }

  const createFrom = (action: RuntimeAction & { readonly _tag: "Create" | "Recreate" }, nowMs: number) => {
    const want = action.container
    const spec = want.spec
    if (driver.holder(want.name) !== undefined)
      return Effect.fail(err(new NameInUse({ container: want.name })))
    if (!world.images.some((i) => i.names.includes(spec.image)))
      return Effect.fail(err(new ImageMissing({ image: spec.image, detail: "image not known" })))
    for (const n of spec.networks) {
      if (!world.networks.some((net) => net.name === n))
        return Effect.fail(
          err(new UnexpectedOutput({ operation: "create", detail: `network ${n} not found` }))
        )
    }
    driver.create(
      {
        name: want.name,
        image: spec.image,
        labels: createLabels(want),
        env: spec.env.map(([k, v]) => `${k}=${v}`),
        args: [...(spec.entrypoint ?? []), ...(spec.command ?? [])],
        hasHealthcheck: spec.health !== undefined,
        // ContainerCreate passes --restart=no: the reconciler restarts, with backoff.
        restartPolicy: "no"
      },
      nowMs
    )
    return Effect.void
  }

  const byName = (name: string) => {
    const c = driver.visible(name)
    return c === undefined ? Effect.fail(err(new NoSuchContainer({ container: name }))) : Effect.succeed(c)
  }

  const applyNow = (action: RuntimeAction, nowMs: number): Effect.Effect<void, RuntimeError> => {
    switch (action._tag) {
      case "EnsureNetwork": {
        if (!world.networks.some((n) => n.name === action.network.name))
          world.networks.push({
            name: action.network.name,
            subnet: action.network.subnet,
            gateway: action.network.gateway
          })
        return Effect.void
      }
      case "PullImage":
      case "BuildImage": {
        if (!world.images.some((i) => i.names.includes(action.source.ref)))
          world.images.push({ id: hexId(world.nextId++), names: [action.source.ref] })
        return Effect.void
      }
      case "Create":
        return createFrom(action, nowMs)
      case "Recreate":
        return Effect.suspend(() => {
          removeContainer(action.containerId, nowMs, "recreate")
          return createFrom(action, nowMs)
        })
      case "Start":
        return Effect.map(byName(action.name), (c) => {
          record("start", c, nowMs)
          if (c.state !== "running") driver.start(c, nowMs)
        })
      case "Stop":
        return Effect.map(byName(action.name), (c) => {
          record("stop", c, nowMs)
          if (c.state === "running") {
            c.state = "exited"
            c.exitCode = 0
            driver.publish("stop", c, nowMs)
          }
        })
      case "Restart":
        return Effect.map(byName(action.name), (c) => {
          record("restart", c, nowMs)
          driver.start(c, nowMs)
        })
      case "Remove":
        return Effect.sync(() =>
          removeContainer(action.containerId !== "" ? action.containerId : action.name, nowMs, "remove")
        )
    }
  }

  const observe: Effect.Effect<RuntimeSnapshot, RuntimeError> = call(
    "list",
    "containers",
    Effect.sync(() => ({
      containers: world.containers.filter((c) => !c.hidden).map(toObserved),
      images: world.images.map((i) => ({ id: i.id, names: [...i.names] })),
      networks: world.networks.map((n) => ({ ...n }))
    }))
  )

  const healthcheck = (name: string): Effect.Effect<HealthcheckResult, RuntimeError> =>
    call(
      "healthcheck",
      name,
      withNow((nowMs) =>
        Effect.flatMap(byName(name), (c) => {
          if (!c.hasHealthcheck)
            return Effect.fail(
              err(new UnexpectedOutput({ operation: "healthcheck", detail: `${name} has no health check` }))
            )
          if (c.state !== "running")
            return Effect.fail(
              err(
                new UnexpectedOutput({ operation: "healthcheck", detail: `container ${name} is not running` })
              )
            )
          if (faults.fire("podman.unhealthy")) {
            trace(`fault podman.unhealthy: ${name}`)
            return Effect.succeed({ healthy: false, output: "simulated check failure" })
          }
          const ready = nowMs - (c.startedAtMs ?? nowMs) >= c.readyAfterMs
          return Effect.succeed(
            ready ? { healthy: true, output: "" } : { healthy: false, output: "still loading" }
          )
        })
      )
    )

  const inspect = (name: string): Effect.Effect<ContainerDetails, RuntimeError> =>
    call(
      "inspect",
      name,
      Effect.map(byName(name), (c) => ({
        name: c.name,
        env: c.env,
        args: c.args,
        labels: c.labels,
        extraHosts: []
      }))
    )

  return PodmanRuntime.of({
    endpoint: "fake",
    observe,
    apply: (action) =>
      call(
        action._tag,
        action.target,
        withNow((nowMs) => applyNow(action, nowMs))
      ),
    calls: Effect.sync(calls),
    events: Stream.fromPubSub(options.events),
    healthcheck,
    inspect
  })
}

/**
 * FM6 detection and repair over the model: a container the state DB lost (`hidden`) is what
 * storage still holds; cleaning it kills and removes it. Its faults come from the same sites as
 * the port's calls.
 */
export const makeState = (options: FakePodmanOptions): PodmanState["Service"] => {
  const { world } = options
  const { call } = makeCaller(options)
  let deepLooks = 0
  const storageOnly = (listed: ReadonlyArray<{ readonly id: string }>, names?: ReadonlySet<string>) => {
    const known = new Set(listed.map((c) => c.id))
    return world.containers.filter(
      (c) => c.hidden && !known.has(c.id) && (names === undefined || names.has(c.name))
    )
  }
  return PodmanState.of({
    orphans: (listed, names) =>
      call(
        "storage",
        "containers.json",
        Effect.gen(function* () {
          if (storageOnly(listed, names).length === 0) return []
          // As the live one does: ask again a second later; a container being created settles.
          deepLooks++
          yield* Effect.sleep(Duration.seconds(1))
          return storageOnly(listed, names).map((c) => ({
            id: c.id,
            name: c.name,
            detail: c.state === "running" ? "storage still holds it and it runs" : "storage still holds it"
          }))
        })
      ),
    clean: (orphan) =>
      call(
        "clean-orphan",
        orphan.name,
        withNowMs((nowMs) =>
          Effect.sync(() => {
            const i = world.containers.findIndex((c) => c.id === orphan.id && c.hidden)
            if (i < 0) return []
            const c = world.containers[i]!
            world.mutations.push({
              atMs: nowMs,
              call: "clean-orphan",
              id: c.id,
              name: c.name,
              labels: c.labels
            })
            world.containers.splice(i, 1)
            return ["killed", "removed from storage"]
          })
        )
      ),
    deepLooks: Effect.sync(() => deepLooks)
  })
}

const withNowMs = <A, E>(f: (nowMs: number) => Effect.Effect<A, E>) =>
  Effect.flatMap(Clock.currentTimeMillis, f)
