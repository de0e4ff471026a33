/**
 * The contract every `PodmanRuntime` adapter passes, against real podman. Containers get a
 * per-run name prefix and live on a dedicated test network, so the suite never touches anything
 * else on the machine; they are force-removed before and after.
 *
 * Call it inside a `describe` that makes the adapter reachable (a `beforeAll` starting a podman
 * service, say): `makeLayer` is called in this suite's own `beforeAll`, after the outer ones.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Action } from "@archy/core/Action"
import type { ContainerSpec, DesiredContainer, NetworkSpec } from "@archy/core/Desired"
import type { ObservedContainer } from "@archy/core/Observed"
import { labels } from "@archy/core/Observed"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type { RuntimeAction, RuntimeError, RuntimeEvent, RuntimeSnapshot } from "../src/PodmanRuntime.ts"
import { PodmanRuntime } from "../src/PodmanRuntime.ts"
import { cleanup, podmanAsync, podmanCli, podmanMissing, runPrefix } from "./support/PodmanService.ts"

export interface ContractOptions {
  /** What one observe costs (`calls` delta) once the node is steady: 1 for libpod. */
  readonly callsPerSteadyObserve: number
  /**
   * How many event subscriptions are open on podman's side right now (processes, connections),
   * to check that ending the stream closes its own.
   */
  readonly openSubscriptions: () => number
}

export const testImage = "localhost/archy-test/busybox:1"
export const missingImage = "localhost/archy-test/does-not-exist:1"

/** Shared by every adapter's suite; EnsureNetwork is idempotent, so they can run side by side. */
export const testNetwork: NetworkSpec = {
  name: "archy-ct-net",
  subnet: "10.89.250.0/24",
  gateway: "10.89.250.1",
  hostAlias: "host.archipelago"
}

const testApp = "archy-ct"
const slow = { timeout: 60_000 }

/** A DesiredContainer for the test image on the test network, stopped with a 1 s grace. */
export const desiredContainer = (
  name: string,
  spec: Partial<ContainerSpec> = {},
  specHash = "ct-hash-1"
): DesiredContainer => {
  const full: ContainerSpec = {
    name,
    image: testImage,
    env: [],
    ports: [],
    mounts: [],
    secretMounts: [],
    networks: [testNetwork.name],
    hostNetwork: false,
    hostPid: false,
    capAdd: [],
    hosts: [[testNetwork.hostAlias, testNetwork.gateway]],
    stopTimeoutSeconds: 1,
    labels: { [labels.app]: testApp, [labels.container]: name },
    ...spec
  }
  return {
    app: testApp,
    name,
    source: { _tag: "Registry", ref: full.image },
    spec: full,
    specHash,
    shouldRun: true,
    consumes: [],
    filesHash: "pending",
    waitsFor: []
  }
}

const base = (target: string) => ({ target, cause: "contract test" })

export const actions = {
  ensureNetwork: (network: NetworkSpec = testNetwork): RuntimeAction =>
    Action.EnsureNetwork({ ...base(`network:${network.name}`), network }),
  create: (container: DesiredContainer): RuntimeAction =>
    Action.Create({ ...base(`container:${container.name}`), container }),
  start: (name: string): RuntimeAction => Action.Start({ ...base(`container:${name}`), name }),
  stop: (name: string, timeoutSeconds = 1): RuntimeAction =>
    Action.Stop({ ...base(`container:${name}`), name, timeoutSeconds }),
  restart: (name: string, timeoutSeconds = 1): RuntimeAction =>
    Action.Restart({ ...base(`container:${name}`), name, timeoutSeconds }),
  remove: (name: string, containerId: string, timeoutSeconds = 1): RuntimeAction =>
    Action.Remove({ ...base(`container:${name}`), name, containerId, timeoutSeconds }),
  recreate: (containerId: string, container: DesiredContainer): RuntimeAction =>
    Action.Recreate({ ...base(`container:${container.name}`), containerId, container })
}

export const runtimeContract = <E>(
  name: string,
  makeLayer: () => Layer.Layer<PodmanRuntime, E>,
  options: ContractOptions
): void => {
  describe.skipIf(podmanMissing !== undefined)(`PodmanRuntime contract: ${name}`, () => {
    const prefix = runPrefix()
    const tempDirs: Array<string> = []
    let runtime: ManagedRuntime.ManagedRuntime<PodmanRuntime, E> | undefined

    const run = <A, E2>(effect: Effect.Effect<A, E2, PodmanRuntime>): Promise<A> => {
      if (runtime === undefined) throw new Error("the runtime is not built: did beforeAll fail?")
      return runtime.runPromise(effect)
    }
    const use = <A, E2>(f: (r: PodmanRuntime["Service"]) => Effect.Effect<A, E2>) =>
      run(
        Effect.gen(function* () {
          return yield* f(yield* PodmanRuntime)
        })
      )
    const apply = (action: RuntimeAction) => use((r) => r.apply(action))
    /** The RuntimeError an action fails with (the test fails if it succeeds). */
    const applyFails = (action: RuntimeAction): Promise<RuntimeError> =>
      use((r) => Effect.flip(r.apply(action)))
    const observe = (): Promise<RuntimeSnapshot> => use((r) => r.observe)
    const calls = () => use((r) => r.calls)
    const find = async (container: string): Promise<ObservedContainer | undefined> =>
      (await observe()).containers.find((c) => c.name === container)
    const mustFind = async (container: string): Promise<ObservedContainer> => {
      const c = await find(container)
      if (c === undefined) assert.fail(`${container} is not in the snapshot`)
      return c
    }
    const tempDir = () => {
      const dir = mkdtempSync(join(tmpdir(), "archy-ct-"))
      tempDirs.push(dir)
      return dir
    }

    beforeAll(async () => {
      cleanup(prefix)
      runtime = ManagedRuntime.make(makeLayer())
      await apply(actions.ensureNetwork())
    }, 60_000)

    afterAll(async () => {
      cleanup(prefix)
      await runtime?.dispose()
      for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
    }, 60_000)

    it("observe returns a snapshot in which the test image is present", slow, async () => {
      const snapshot = await observe()
      assert.isTrue(
        snapshot.images.some((i) => i.names.includes(testImage)),
        `${testImage} not among ${JSON.stringify(snapshot.images.map((i) => i.names))}`
      )
      for (const c of snapshot.containers) assert.isString(c.id)
    })

    it("EnsureNetwork creates the network and is idempotent", slow, async () => {
      await apply(actions.ensureNetwork())
      await apply(actions.ensureNetwork())
      const network = (await observe()).networks.find((n) => n.name === testNetwork.name)
      assert.deepStrictEqual(network, {
        name: testNetwork.name,
        subnet: testNetwork.subnet,
        gateway: testNetwork.gateway
      })
    })

    describe("one container's life", () => {
      const containerName = `${prefix}life`
      const desired = desiredContainer(containerName)
      let id = ""

      it("Create: the container exists, created, with our labels", slow, async () => {
        await apply(actions.create(desired))
        const c = await mustFind(containerName)
        id = c.id
        assert.strictEqual(c.state, "created")
        assert.strictEqual(c.image, testImage)
        assert.strictEqual(c.labels[labels.app], testApp)
        assert.strictEqual(c.labels[labels.container], containerName)
        assert.strictEqual(c.labels[labels.specHash], "ct-hash-1")
        assert.isUndefined(c.startedAtMs)
      })

      it("Start: running, with its start time; starting again is fine", slow, async () => {
        const before = Date.now()
        await apply(actions.start(containerName))
        const c = await mustFind(containerName)
        assert.strictEqual(c.state, "running")
        assert.isDefined(c.startedAtMs)
        // podman reports whole seconds.
        assert.isAtLeast(c.startedAtMs ?? 0, before - 2_000)
        assert.isAtMost(c.startedAtMs ?? 0, Date.now() + 2_000)
        await apply(actions.start(containerName))
        assert.strictEqual((await mustFind(containerName)).state, "running")
      })

      it("Restart: running again, started later", slow, async () => {
        const first = (await mustFind(containerName)).startedAtMs ?? 0
        // The test image's PID 1 ignores SIGTERM, so the 1 s grace runs out: the restart is later.
        await apply(actions.restart(containerName, 1))
        const c = await mustFind(containerName)
        assert.strictEqual(c.state, "running")
        assert.isAbove(c.startedAtMs ?? 0, first)
      })

      it("Stop with a timeout: exited within the grace period; stopping again is fine", slow, async () => {
        const t0 = Date.now()
        await apply(actions.stop(containerName, 1))
        assert.isBelow(Date.now() - t0, 15_000)
        const c = await mustFind(containerName)
        assert.include(["exited", "stopped"], c.state)
        assert.isNumber(c.exitCode)
        await apply(actions.stop(containerName, 1))
      })

      it("Remove: gone; removing it again is fine", slow, async () => {
        await apply(actions.remove(containerName, id))
        assert.isUndefined(await find(containerName))
        await apply(actions.remove(containerName, id))
      })
    })

    it("Remove of a container that never existed is fine", slow, async () => {
      await apply(actions.remove(`${prefix}never`, `${prefix}never`))
    })

    it("Recreate replaces the container with the new spec", slow, async () => {
      const containerName = `${prefix}recreate`
      await apply(actions.create(desiredContainer(containerName)))
      await apply(actions.start(containerName))
      const old = await mustFind(containerName)
      await apply(actions.recreate(old.id, desiredContainer(containerName, {}, "ct-hash-2")))
      const c = await mustFind(containerName)
      assert.notStrictEqual(c.id, old.id)
      assert.strictEqual(c.state, "created")
      assert.strictEqual(c.labels[labels.specHash], "ct-hash-2")
    })

    it("Create with a name in use fails with NameInUse", slow, async () => {
      const containerName = `${prefix}twice`
      await apply(actions.create(desiredContainer(containerName)))
      const error = await applyFails(actions.create(desiredContainer(containerName)))
      assert.strictEqual(error.reason._tag, "NameInUse")
    })

    it("Create from an image that is not here fails with ImageMissing", slow, async () => {
      const error = await applyFails(
        actions.create(desiredContainer(`${prefix}noimage`, { image: missingImage }))
      )
      assert.strictEqual(error.reason._tag, "ImageMissing", error.message)
      assert.isUndefined(await find(`${prefix}noimage`))
    })

    it("Start of a missing container fails with NoSuchContainer", slow, async () => {
      const error = await applyFails(actions.start(`${prefix}missing`))
      assert.strictEqual(error.reason._tag, "NoSuchContainer", error.message)
    })

    it("inspect of a missing container fails with NoSuchContainer", slow, async () => {
      const error = await use((r) => Effect.flip(r.inspect(`${prefix}missing`)))
      assert.strictEqual(error.reason._tag, "NoSuchContainer", error.message)
      assert.deepInclude(error.reason, { container: `${prefix}missing` })
    })

    describe("a running container with a secret and a data directory", () => {
      const containerName = `${prefix}secret`
      const secretValue = `s3cret-${Math.random().toString(36).slice(2)}`
      // Not the image's own command (`/bin/sleep 3600`), so inspect must report ours.
      const inspectCommand = ["/bin/sleep", "3599"]
      const inspectLabel = "archy-ct.inspect"
      let dataDir = ""
      let secretFile = ""

      beforeAll(async () => {
        const dir = tempDir()
        secretFile = join(dir, "rpcpass")
        writeFileSync(secretFile, secretValue, { mode: 0o600 })
        dataDir = join(dir, "data", "deep")
        await apply(
          actions.create(
            desiredContainer(containerName, {
              mounts: [{ source: dataDir, target: "/data", readOnly: false, kind: "directory" }],
              secretMounts: [{ name: "rpcpass", source: secretFile, target: "/run/secrets/rpcpass" }],
              env: [["ARCHY_CT", "plain"]],
              command: inspectCommand,
              labels: { ...desiredContainer(containerName).spec.labels, [inspectLabel]: "yes" }
            })
          )
        )
        await apply(actions.start(containerName))
      }, 60_000)

      it("Create made the directory mount on the host", () => {
        assert.isTrue(statSync(dataDir).isDirectory())
      })

      it("the secret is a file inside, and never in podman inspect", slow, () => {
        const inside = podmanCli(["exec", containerName, "cat", "/run/secrets/rpcpass"])
        assert.strictEqual(inside.status, 0, inside.stderr)
        assert.strictEqual(inside.stdout, secretValue)
        const inspect = podmanCli(["inspect", containerName])
        assert.strictEqual(inspect.status, 0, inspect.stderr)
        assert.include(inspect.stdout, "ARCHY_CT=plain")
        assert.notInclude(inspect.stdout, secretValue)
        const written = podmanCli(["exec", containerName, "sh", "-c", "echo x > /run/secrets/rpcpass"])
        assert.notStrictEqual(written.status, 0, "the secret mount is read-only")
      })

      it("inspect shows its env, command, labels and extra hosts, in one call", slow, async () => {
        const before = await calls()
        const details = await use((r) => r.inspect(containerName))
        assert.strictEqual((await calls()) - before, 1)
        assert.strictEqual(details.name, containerName)
        assert.include(details.env, "ARCHY_CT=plain")
        assert.deepStrictEqual(details.args, inspectCommand)
        assert.strictEqual(details.labels[inspectLabel], "yes")
        assert.strictEqual(details.labels[labels.container], containerName)
        assert.strictEqual(details.labels[labels.specHash], "ct-hash-1")
        assert.include(details.extraHosts, `${testNetwork.hostAlias}:${testNetwork.gateway}`)
      })

      it("inspect: the secret file is in neither env nor args", slow, async () => {
        const details = await use((r) => r.inspect(containerName))
        for (const entry of [...details.env, ...details.args]) {
          assert.notInclude(entry, secretValue)
          assert.notInclude(entry, secretFile)
          assert.notInclude(entry, "/run/secrets/rpcpass")
        }
      })

      it("host.archipelago resolves to the gateway inside", slow, () => {
        const hosts = podmanCli(["exec", containerName, "cat", "/etc/hosts"])
        assert.strictEqual(hosts.status, 0, hosts.stderr)
        const line = hosts.stdout.split("\n").find((l) => l.split(/\s+/).includes(testNetwork.hostAlias))
        assert.isDefined(line, hosts.stdout)
        assert.strictEqual(line?.split(/\s+/)[0], testNetwork.gateway)
      })
    })

    it("the manifest's health check is recorded so `podman healthcheck run` can run it", slow, async () => {
      const containerName = `${prefix}health`
      const withHealth = (command: ReadonlyArray<string>, suffix: string) =>
        desiredContainer(`${containerName}-${suffix}`, {
          health: { command: command as [string, ...Array<string>], timeout: "5s", retries: 2 }
        })
      // One command of plain words, one whose argument has a space (podman parses them apart).
      const plain = withHealth(["test", "-d", "/tmp"], "plain")
      const spaced = withHealth(["sh", "-c", "test -d /tmp && test -d /bin"], "spaced")
      const failing = withHealth(["test", "-d", "/no/such/dir"], "failing")
      for (const c of [plain, spaced, failing]) {
        await apply(actions.create(c))
        await apply(actions.start(c.name))
      }
      assert.strictEqual(podmanCli(["healthcheck", "run", plain.name]).status, 0, "plain words")
      assert.strictEqual(podmanCli(["healthcheck", "run", spaced.name]).status, 0, "argument with spaces")
      assert.notStrictEqual(
        podmanCli(["healthcheck", "run", failing.name]).status,
        0,
        "a failing check fails"
      )
    })

    describe("events", () => {
      const containerName = `${prefix}events`
      const podman = (args: ReadonlyArray<string>) =>
        Effect.promise(() => podmanAsync(args)).pipe(
          Effect.tap((r) =>
            Effect.sync(() => assert.strictEqual(r.status, 0, `podman ${args.join(" ")}: ${r.stderr}`))
          )
        )
      /** The first event `seen` delivers that matches, or undefined after `ms`. */
      const waitFor = (
        seen: Queue.Queue<RuntimeEvent>,
        match: (e: RuntimeEvent) => boolean,
        ms: number
      ): Effect.Effect<RuntimeEvent | undefined> =>
        Effect.gen(function* () {
          while (true) {
            const e = yield* Queue.take(seen)
            if (match(e)) return e
          }
        }).pipe(Effect.timeoutOrElse({ duration: ms, orElse: () => Effect.succeed(undefined) }))

      it(
        "a killed container's died event arrives within 5 s; ending the stream closes it",
        slow,
        async () => {
          await apply(actions.create(desiredContainer(containerName)))
          await apply(actions.start(containerName))
          const id = (await mustFind(containerName)).id
          const baseline = options.openSubscriptions()
          const outcome = await use((r) =>
            Effect.gen(function* () {
              const seen = yield* Queue.unbounded<RuntimeEvent>()
              const before = yield* r.calls
              const fiber = yield* r.events.pipe(
                Stream.runForEach((e) => Queue.offer(seen, e)),
                Effect.forkChild
              )
              // The subscription is live once it delivers an event we caused after subscribing.
              let live: RuntimeEvent | undefined
              for (let attempt = 0; attempt < 20 && live === undefined; attempt++) {
                yield* podman(["pause", containerName])
                yield* podman(["unpause", containerName])
                live = yield* waitFor(seen, (e) => e.name === containerName && e.action === "unpause", 1_000)
              }
              assert.isDefined(live, "no unpause event arrived")
              const during = options.openSubscriptions()
              const t0 = Date.now()
              yield* podman(["kill", containerName])
              const killedMs = Date.now() - t0
              const died = yield* waitFor(seen, (e) => e.name === containerName && e.action === "died", 5_000)
              const arrived = Date.now()
              const latencyMs = arrived - t0
              const sinceEventMs = died === undefined ? undefined : arrived - died.timeMs
              const subscriptionCalls = (yield* r.calls) - before
              const t1 = Date.now()
              yield* Fiber.interrupt(fiber)
              return {
                died,
                latencyMs,
                killedMs,
                sinceEventMs,
                during,
                subscriptionCalls,
                interruptMs: Date.now() - t1
              }
            })
          )
          const { died } = outcome
          if (died === undefined) assert.fail(`no died event for ${containerName} within 5 s`)
          assert.strictEqual(died.type, "container")
          assert.strictEqual(died.id, id)
          assert.isAtLeast(died.timeMs, Date.now() - 60_000)
          assert.isAtMost(died.timeMs, Date.now() + 2_000)
          assert.strictEqual(outcome.subscriptionCalls, 1, "a subscription counts as one call")
          assert.isBelow(outcome.interruptMs, 5_000)
          assert.isAtLeast(outcome.during, baseline + 1, "the subscription is open while it runs")
          let after = options.openSubscriptions()
          for (let i = 0; i < 20 && after > baseline; i++) {
            await new Promise((resolve) => setTimeout(resolve, 100))
            after = options.openSubscriptions()
          }
          assert.isAtMost(after, baseline, "ending the stream closed its subscription")
          console.info(
            `${name}: died event arrived ${outcome.latencyMs} ms after \`podman kill\` began ` +
              `(which took ${outcome.killedMs} ms), ${outcome.sinceEventMs} ms after its own timestamp; ` +
              `interrupting took ${outcome.interruptMs} ms`
          )
        }
      )
    })

    describe("healthcheck", () => {
      const base = `${prefix}hc`
      const passing = desiredContainer(`${base}-pass`, {
        health: { command: ["sh", "-c", "echo all good"], timeout: "5s", retries: 2 }
      })
      const failing = desiredContainer(`${base}-fail`, {
        health: { command: ["sh", "-c", "echo not ready yet; exit 1"], timeout: "5s", retries: 2 }
      })
      const overrunning = desiredContainer(`${base}-slow`, {
        health: { command: ["sh", "-c", "echo slow; sleep 3"], timeout: "1s", retries: 2 }
      })
      const unchecked = desiredContainer(`${base}-none`)

      beforeAll(async () => {
        for (const c of [passing, failing, overrunning, unchecked]) {
          await apply(actions.create(c))
          await apply(actions.start(c.name))
        }
      }, 60_000)

      it("a passing check is healthy, and counts as a call", slow, async () => {
        const before = await calls()
        const result = await use((r) => r.healthcheck(passing.name))
        assert.isTrue(result.healthy, result.output)
        assert.isAtLeast((await calls()) - before, 1)
      })

      it("a failing check is a value: unhealthy, with what it printed", slow, async () => {
        const result = await use((r) => r.healthcheck(failing.name))
        assert.isFalse(result.healthy)
        assert.include(result.output, "not ready yet")
      })

      // podman 4.3 does not stop a check at its timeout: it reports the overrun once it ends.
      it("a check that overruns its timeout is unhealthy", slow, async () => {
        const result = await use((r) => r.healthcheck(overrunning.name))
        assert.isFalse(result.healthy)
        assert.include(result.output, "timeout")
      })

      it("a missing container fails with NoSuchContainer", slow, async () => {
        const error = await use((r) => Effect.flip(r.healthcheck(`${base}-missing`)))
        assert.strictEqual(error.reason._tag, "NoSuchContainer", error.message)
      })

      it("a container without a health check fails with UnexpectedOutput", slow, async () => {
        const error = await use((r) => Effect.flip(r.healthcheck(unchecked.name)))
        assert.strictEqual(error.reason._tag, "UnexpectedOutput", error.message)
      })
    })

    it(`a steady observe costs ${options.callsPerSteadyObserve} call(s)`, slow, async () => {
      await observe()
      const before = await calls()
      const snapshot = await observe()
      const after = await calls()
      assert.strictEqual(after - before, options.callsPerSteadyObserve)
      assert.isTrue(snapshot.images.some((i) => i.names.includes(testImage)))
      assert.isTrue(snapshot.networks.some((n) => n.name === testNetwork.name))
    })
  })
}
