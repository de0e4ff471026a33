import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Desired from "@archy/core/Desired"
import { AdoptionStore } from "@archy/engine/AdoptionStore"
import { AppLocks } from "@archy/engine/AppLocks"
import { CrashMemory } from "@archy/engine/CrashBackoff"
import { HealthBook } from "@archy/engine/Health"
import { SecretStore } from "@archy/engine/SecretStore"
import { PodmanRuntime, type RuntimeAction } from "@archy/podman/PodmanRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Ref from "effect/Ref"
import { TestClock } from "effect/testing"
import { makeMemoryRuntime } from "../../engine/test/MemoryRuntime.ts"
import * as Daemon from "../src/Daemon.ts"
import { SelectionStore } from "../src/SelectionStore.ts"

const appsDir = new URL("../../../test/fixtures/apps/", import.meta.url).pathname

const config = (stateDir: string): Daemon.DaemonConfig => ({
  appsDir,
  node: {
    ...Desired.defaultNodeConfig,
    dataRoot: join(stateDir, "apps"),
    secretsDir: join(stateDir, "secrets")
  },
  interval: Duration.seconds(30),
  debounce: Duration.millis(300),
  healthTick: Duration.hours(1),
  events: true
})

/** Runs `body` with a daemon over the in-memory runtime; `slow` wraps what podman calls take. */
const withDaemon = <A, E>(
  body: (ctx: {
    readonly daemon: Daemon.Daemon
    readonly control: Effect.Success<ReturnType<typeof makeMemoryRuntime>>["control"]
    readonly observes: Ref.Ref<number>
    readonly maxConcurrent: Ref.Ref<number>
  }) => Effect.Effect<A, E>,
  options: {
    readonly observeDelay?: Duration.Duration
    readonly beforeApply?: (action: RuntimeAction) => Effect.Effect<void>
  } = {}
) =>
  Effect.gen(function* () {
    const stateDir = mkdtempSync(join(tmpdir(), "archy-daemon-"))
    const { control, layer } = yield* makeMemoryRuntime()
    const observes = yield* Ref.make(0)
    const running = yield* Ref.make(0)
    const maxConcurrent = yield* Ref.make(0)
    // Count observes and how many run at once (passes must never overlap).
    const counted = Layer.effect(
      PodmanRuntime,
      Effect.gen(function* () {
        const real = yield* PodmanRuntime
        return PodmanRuntime.of({
          ...real,
          apply: (action, progress) =>
            (options.beforeApply?.(action) ?? Effect.void).pipe(Effect.andThen(real.apply(action, progress))),
          observe: Effect.gen(function* () {
            yield* Ref.update(observes, (n) => n + 1)
            const now = yield* Ref.updateAndGet(running, (n) => n + 1)
            yield* Ref.update(maxConcurrent, (m) => Math.max(m, now))
            if (options.observeDelay !== undefined) yield* Effect.sleep(options.observeDelay)
            const snapshot = yield* real.observe
            yield* Ref.update(running, (n) => n - 1)
            return snapshot
          })
        })
      })
    ).pipe(Layer.provide(layer))
    const services = Layer.mergeAll(
      counted,
      SecretStore.layer(join(stateDir, "secrets")),
      AdoptionStore.layer(join(stateDir, "adopted.json")),
      SelectionStore.layer(join(stateDir, "selection.json")),
      HealthBook.layer,
      CrashMemory.layer,
      AppLocks.layer
    ).pipe(Layer.provideMerge(NodeServices.layer))
    return yield* Effect.scoped(
      Effect.gen(function* () {
        const daemon = yield* Daemon.make(config(stateDir))
        yield* daemon.start
        return yield* body({ daemon, control, observes, maxConcurrent })
      })
    ).pipe(
      Effect.provide(services),
      Effect.ensuring(Effect.sync(() => rmSync(stateDir, { recursive: true, force: true })))
    )
  })

/** Lets the forked loops run until they block again (on the clock or a queue); files are real. */
const settle = Effect.gen(function* () {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
  yield* TestClock.withLive(Effect.sleep(Duration.millis(100)))
})

/** Waits (in real time, at most 10 s) until the daemon has run `n` passes. */
const passesReach = (daemon: Daemon.Daemon, n: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < 200 && (yield* daemon.passes) < n; i++) {
      yield* TestClock.withLive(Effect.sleep(Duration.millis(50)))
    }
    assert.strictEqual(yield* daemon.passes, n)
  })

describe("Daemon", () => {
  it.effect("runs the boot pass at once, then a pass every 30 s", () =>
    withDaemon(({ daemon }) =>
      Effect.gen(function* () {
        yield* passesReach(daemon, 1)
        const boot = (yield* daemon.lastPass)!
        assert.strictEqual(boot.reason, "boot")
        assert.isAbove(boot.reports.length, 5)
        yield* TestClock.adjust(Duration.seconds(29))
        yield* settle
        assert.strictEqual(yield* daemon.passes, 1)
        yield* TestClock.adjust(Duration.seconds(1))
        yield* passesReach(daemon, 2)
        assert.strictEqual((yield* daemon.lastPass)!.reason, "timer")
        yield* TestClock.adjust(Duration.seconds(30))
        yield* passesReach(daemon, 3)
      })
    )
  )

  it.effect("a podman event triggers a pass within the debounce, and a burst costs one pass", () =>
    withDaemon(({ daemon, control }) =>
      Effect.gen(function* () {
        yield* passesReach(daemon, 1)
        for (const name of ["archy-fx-worker", "archy-fx-worker", "archy-fx-ui"]) {
          yield* PubSub.publish(control.events, { type: "container", action: "died", name, timeMs: 0 })
        }
        yield* settle
        yield* TestClock.adjust(Duration.millis(299))
        yield* settle
        assert.strictEqual(yield* daemon.passes, 1)
        yield* TestClock.adjust(Duration.millis(1))
        yield* passesReach(daemon, 2)
        assert.match((yield* daemon.lastPass)!.reason, /^event died archy-fx-ui$/)
        // Events that cannot need healing (an image pulled) trigger nothing.
        yield* PubSub.publish(control.events, { type: "image", action: "pull", name: "x", timeMs: 0 })
        yield* TestClock.adjust(Duration.seconds(1))
        yield* settle
        assert.strictEqual(yield* daemon.passes, 2)
      })
    )
  )

  it.effect("a slow pass delays the next one, never overlaps it", () =>
    withDaemon(
      ({ daemon, maxConcurrent, observes }) =>
        Effect.gen(function* () {
          // The boot pass's observe takes 40 s: the 30 s timer fires meanwhile. Each pass reads
          // the disk (catalog, secrets, files, directories) before its observe sleeps: the clock
          // moves only once it sleeps, or the seconds would pass before it began.
          const observing = (n: number) =>
            Effect.gen(function* () {
              for (let i = 0; i < 200 && (yield* Ref.get(observes)) < n; i++) {
                yield* TestClock.withLive(Effect.sleep(Duration.millis(50)))
              }
              yield* settle
            })
          yield* observing(1)
          yield* TestClock.adjust(Duration.seconds(30))
          yield* settle
          assert.strictEqual(yield* daemon.passes, 0)
          yield* TestClock.adjust(Duration.seconds(10))
          yield* passesReach(daemon, 1)
          yield* observing(2)
          yield* TestClock.adjust(Duration.seconds(40))
          yield* passesReach(daemon, 2)
          assert.strictEqual(yield* Ref.get(maxConcurrent), 1)
        }),
      { observeDelay: Duration.seconds(40) }
    )
  )

  it.effect("SIGTERM (interruption) mid-pass lets the action under way finish and starts no other", () =>
    Effect.gen(function* () {
      const createBegan = yield* Deferred.make<void>()
      let control: Effect.Success<ReturnType<typeof makeMemoryRuntime>>["control"] | undefined
      const daemonFiber = yield* Effect.forkChild(
        withDaemon(
          (ctx) =>
            Effect.sync(() => {
              control = ctx.control
            }).pipe(Effect.andThen(Effect.never)),
          {
            // podman takes 5 s to create bitcoind's container; the signal arrives meanwhile.
            beforeApply: (action) =>
              action._tag === "Create" && action.target === "container:archy-fx-bitcoind"
                ? Deferred.succeed(createBegan, undefined).pipe(
                    Effect.andThen(Effect.sleep(Duration.seconds(5)))
                  )
                : Effect.void
          }
        )
      )
      yield* TestClock.withLive(Deferred.await(createBegan).pipe(Effect.timeout(Duration.seconds(10))))
      const stopping = yield* Effect.forkChild(Fiber.interrupt(daemonFiber))
      yield* settle
      yield* TestClock.adjust(Duration.seconds(5))
      yield* Fiber.join(stopping)
      const applied = control!.applied
      assert.include(applied, "Create container:archy-fx-bitcoind")
      assert.strictEqual(applied[applied.length - 1], "Create container:archy-fx-bitcoind")
      const snapshot = yield* Ref.get(control!.snapshot)
      assert.strictEqual(snapshot.containers.find((c) => c.name === "archy-fx-bitcoind")?.state, "created")
    })
  )

  it.effect("passNow waits for its pass and reports it; passes requested meanwhile coalesce", () =>
    withDaemon(({ daemon }) =>
      Effect.gen(function* () {
        yield* passesReach(daemon, 1)
        const [a, b] = yield* Effect.all([daemon.passNow("api"), daemon.passNow("api")], {
          concurrency: 2
        })
        assert.strictEqual(a.reason, "api")
        assert.strictEqual(a.atMs, b.atMs)
        assert.strictEqual(yield* daemon.passes, 2)
        // The boot pass left lnd waiting for bitcoind's health; this pass brought it up.
        assert.includeMembers(
          a.reports.map((r) => `${r.action._tag} ${r.action.target}`),
          ["Start container:archy-fx-lnd"]
        )
      })
    )
  )
})
