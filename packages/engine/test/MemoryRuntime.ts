/**
 * An in-memory PodmanRuntime for engine tests: applies runtime actions to a snapshot the way
 * podman would, and can be told to fail chosen actions.
 */
import { labels, type ObservedContainer } from "@archy/core/Observed"
import { createLabels } from "@archy/podman/ContainerCreate"
import {
  NameInUse,
  NoSuchContainer,
  PodmanRuntime,
  type RuntimeAction,
  RuntimeError,
  type RuntimeEvent,
  type RuntimeSnapshot,
  UnexpectedOutput
} from "@archy/podman/PodmanRuntime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"

export interface MemoryRuntimeControl {
  readonly snapshot: Ref.Ref<RuntimeSnapshot>
  /** Events the runtime's stream delivers. */
  readonly events: PubSub.PubSub<RuntimeEvent>
  /** Containers whose health check fails, with the output to report. */
  readonly unhealthy: Map<string, string>
  /** Targets (`container:x`, `image:y`) whose next applies fail. */
  readonly failing: Set<string>
  readonly applied: Array<string>
}

export const makeMemoryRuntime = (initial: RuntimeSnapshot = { containers: [], images: [], networks: [] }) =>
  Effect.gen(function* () {
    const snapshot = yield* Ref.make(initial)
    const events = yield* PubSub.unbounded<RuntimeEvent>()
    const control: MemoryRuntimeControl = {
      snapshot,
      events,
      unhealthy: new Map(),
      failing: new Set(),
      applied: []
    }
    let calls = 0
    let nextId = 0
    const update = (f: (s: RuntimeSnapshot) => RuntimeSnapshot) => Ref.update(snapshot, f)
    const setState = (name: string, state: ObservedContainer["state"]) =>
      update((s) => ({
        ...s,
        containers: s.containers.map((c) => (c.name === name ? { ...c, state, startedAtMs: Date.now() } : c))
      }))
    const apply = (action: RuntimeAction) =>
      Effect.gen(function* () {
        calls++
        control.applied.push(`${action._tag} ${action.target}`)
        if (control.failing.has(action.target)) {
          return yield* new RuntimeError({
            reason: new UnexpectedOutput({ operation: action._tag, detail: "injected failure" })
          })
        }
        switch (action._tag) {
          case "EnsureNetwork":
            return yield* update((s) => ({
              ...s,
              networks: [
                ...s.networks,
                { name: action.network.name, subnet: action.network.subnet, gateway: action.network.gateway }
              ]
            }))
          case "PullImage":
          case "BuildImage":
            return yield* update((s) => ({
              ...s,
              images: [...s.images, { id: `i${nextId++}`, names: [action.source.ref] }]
            }))
          case "Create":
          case "Recreate": {
            const s = yield* Ref.get(snapshot)
            const others =
              action._tag === "Recreate"
                ? s.containers.filter((c) => c.id !== action.containerId)
                : s.containers
            if (others.some((c) => c.name === action.container.name)) {
              return yield* new RuntimeError({ reason: new NameInUse({ container: action.container.name }) })
            }
            const c: ObservedContainer = {
              id: `c${nextId++}`,
              name: action.container.name,
              image: action.container.spec.image,
              labels: createLabels(action.container),
              state: "created"
            }
            return yield* Ref.set(snapshot, { ...s, containers: [...others, c] })
          }
          case "Start":
          case "Restart":
            return yield* setState(action.name, "running")
          case "Stop":
            return yield* setState(action.name, "exited")
          case "Remove":
            return yield* update((s) => ({
              ...s,
              containers: s.containers.filter((c) => c.id !== action.containerId)
            }))
        }
      })
    const layer = Layer.succeed(
      PodmanRuntime,
      PodmanRuntime.of({
        endpoint: "memory",
        observe: Effect.sync(() => calls++).pipe(Effect.andThen(Ref.get(snapshot))),
        apply,
        calls: Effect.sync(() => calls),
        events: Stream.fromPubSub(events),
        inspect: (container) =>
          Effect.gen(function* () {
            calls++
            const c = (yield* Ref.get(snapshot)).containers.find((x) => x.name === container)
            if (c === undefined)
              return yield* new RuntimeError({ reason: new NoSuchContainer({ container }) })
            return { name: c.name, env: [], args: [], labels: c.labels, extraHosts: [] }
          }),
        healthcheck: (container) =>
          Effect.sync(() => {
            calls++
            const failure = control.unhealthy.get(container)
            return failure === undefined ? { healthy: true, output: "" } : { healthy: false, output: failure }
          })
      })
    )
    return { control, layer }
  })

export const ourContainers = (s: RuntimeSnapshot) =>
  s.containers.filter((c) => c.labels[labels.app] !== undefined)
