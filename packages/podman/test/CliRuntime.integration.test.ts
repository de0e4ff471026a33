import { execFileSync } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Action } from "@archy/core/Action"
import type { DesiredContainer } from "@archy/core/Desired"
import { labels } from "@archy/core/Observed"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { busyboxV1, busyboxV2 } from "../../../test/images/images.ts"
import * as CliRuntime from "../src/CliRuntime.ts"
import type { RuntimeEvent } from "../src/PodmanRuntime.ts"
import { PodmanRuntime, RuntimeError } from "../src/PodmanRuntime.ts"
import { testNetwork as cliTestNetwork, runtimeContract } from "./contract.ts"
import {
  eventProcesses,
  type PodmanService,
  podmanMissing,
  startPodmanService
} from "./support/PodmanService.ts"

const cliLayer = (options: CliRuntime.Options = {}) =>
  CliRuntime.layer(options).pipe(Layer.provide(NodeServices.layer))

runtimeContract("cli", () => cliLayer(), { callsPerSteadyObserve: 1, openSubscriptions: eventProcesses })

describe.skipIf(podmanMissing !== undefined)("CliRuntime with --url to a podman service", () => {
  let service: PodmanService | undefined

  beforeAll(async () => {
    service = await startPodmanService()
  }, 60_000)

  afterAll(async () => {
    await service?.stop()
  })

  runtimeContract(
    "cli --url",
    () => {
      if (service === undefined) throw new Error("the podman service did not start")
      return cliLayer({ url: `unix://${service.socketPath}` })
    },
    { callsPerSteadyObserve: 1, openSubscriptions: eventProcesses }
  )
})

const run = Effect.fn("test.run")(function* <A, E>(
  effect: Effect.Effect<A, E, PodmanRuntime>,
  options: CliRuntime.Options = {}
) {
  return yield* Effect.provide(effect, cliLayer(options))
})

const podman = (...args: Array<string>) =>
  execFileSync("podman", args, { encoding: "utf8", stdio: "pipe" }).trim()
const podmanQuiet = (...args: Array<string>) => {
  try {
    execFileSync("podman", args, { stdio: "ignore" })
  } catch {
    // cleanup: whatever is already gone is fine
  }
}

const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`
const prefix = `archy-cli-test-${suffix}`
const workDir = mkdtempSync(join(tmpdir(), "archy-cli-test-"))
const containers: Array<string> = []
const networks: Array<string> = []
const imageNames: Array<string> = []

const containerName = (what: string) => {
  const name = `${prefix}-${what}`
  containers.push(name)
  return name
}

const desired = (name: string, image: string, dataDir: string): DesiredContainer => ({
  app: "archy-cli-test",
  name,
  source: { _tag: "Registry", ref: image },
  spec: {
    name,
    image,
    env: [["GREETING", "hello"]],
    ports: [],
    mounts: [{ source: dataDir, target: "/data", readOnly: false, kind: "directory" }],
    secretMounts: [],
    networks: [],
    hostNetwork: false,
    hostPid: false,
    capAdd: [],
    hosts: [],
    stopTimeoutSeconds: 0,
    labels: { [labels.app]: "archy-cli-test", [labels.container]: name }
  },
  specHash: "spec-1",
  shouldRun: true,
  consumes: [],
  filesHash: "pending",
  waitsFor: []
})

const observe = Effect.gen(function* () {
  const rt = yield* PodmanRuntime
  return yield* rt.observe
})

const base = (target: string) => ({ target, cause: "test" })

const reasonOf = <A>(
  effect: Effect.Effect<A, RuntimeError, PodmanRuntime>,
  options: CliRuntime.Options = {}
) => run(Effect.flip(effect), options).pipe(Effect.map((e) => e.reason))

/** A stand-in podman: a shell script, for what real podman cannot be made to do on demand. */
const fakePodman = (name: string, script: string) => {
  const path = join(workDir, name)
  writeFileSync(path, `#!/bin/sh\n${script}\n`)
  chmodSync(path, 0o755)
  return path
}

beforeAll(() => {
  if (podmanMissing !== undefined) return
  for (const image of [busyboxV1, busyboxV2]) {
    try {
      execFileSync("podman", ["image", "exists", image])
    } catch {
      throw new Error(`test image ${image} is missing: run scripts/test-images.sh`)
    }
  }
})

afterAll(() => {
  for (const c of containers) podmanQuiet("rm", "-f", "-t", "0", c)
  for (const n of networks) podmanQuiet("network", "rm", "-f", n)
  // rmi of one name only untags an image that has others (the pulled one shares busybox:2's id).
  for (const i of imageNames) podmanQuiet("rmi", i)
  rmSync(workDir, { recursive: true, force: true })
})

describe.skipIf(podmanMissing !== undefined)("CliRuntime against real podman", () => {
  it.live("creates, starts, restarts, stops, recreates and removes a container", () =>
    Effect.gen(function* () {
      const rt = yield* PodmanRuntime
      const name = containerName("life")
      const dataDir = join(workDir, "life", "data")
      const want = desired(name, busyboxV1, dataDir)
      const find = Effect.map(rt.observe, (s) => s.containers.find((c) => c.name === name))

      yield* rt.apply(Action.Create({ ...base(`container:${name}`), container: want }))
      assert.isTrue(existsSync(dataDir), "the bind mount's host directory is created")
      const created = yield* find
      assert.isDefined(created)
      assert.strictEqual(created?.state, "created")
      assert.strictEqual(created?.image, busyboxV1)
      assert.strictEqual(created?.labels[labels.app], "archy-cli-test")
      assert.strictEqual(created?.labels[labels.specHash], "spec-1")
      assert.isUndefined(created?.startedAtMs)

      const before = Date.now()
      yield* rt.apply(Action.Start({ ...base(`container:${name}`), name }))
      const running = yield* find
      assert.strictEqual(running?.state, "running")
      assert.isAbove(running?.startedAtMs ?? 0, before - 2000)

      yield* rt.apply(Action.Restart({ ...base(`container:${name}`), name, timeoutSeconds: 0 }))
      assert.strictEqual((yield* find)?.state, "running")

      yield* rt.apply(Action.Stop({ ...base(`container:${name}`), name, timeoutSeconds: 0 }))
      const stopped = yield* find
      assert.strictEqual(stopped?.state, "exited")
      assert.strictEqual(stopped?.exitCode, 137, "sleep ignores SIGTERM, so -t 0 kills it")

      yield* rt.apply(
        Action.Recreate({
          ...base(`container:${name}`),
          containerId: stopped!.id,
          container: { ...want, specHash: "spec-2" }
        })
      )
      const recreated = yield* find
      assert.notStrictEqual(recreated?.id, stopped?.id)
      assert.strictEqual(recreated?.labels[labels.specHash], "spec-2")
      assert.strictEqual(recreated?.state, "created")

      const remove = Action.Remove({
        ...base(`container:${name}`),
        name,
        containerId: recreated!.id,
        timeoutSeconds: 0
      })
      yield* rt.apply(remove)
      assert.isUndefined(yield* find)
      // Removing what is already gone is fine.
      yield* rt.apply(remove)
    }).pipe(run)
  )

  it.live("ensures a network once, and reads its subnet and gateway back", () =>
    Effect.gen(function* () {
      const rt = yield* PodmanRuntime
      const name = `${prefix}-net`
      networks.push(name)
      const octet = 100 + Math.floor(Math.random() * 150)
      const network = {
        name,
        subnet: `10.231.${octet}.0/24`,
        gateway: `10.231.${octet}.1`,
        hostAlias: "host.archipelago"
      }
      const ensure = Action.EnsureNetwork({ ...base(`network:${name}`), network })
      yield* rt.apply(ensure)
      yield* rt.apply(ensure)
      const seen = (yield* rt.observe).networks.find((n) => n.name === name)
      assert.deepStrictEqual(seen, { name, subnet: network.subnet, gateway: network.gateway })
    }).pipe(run)
  )

  it.live("classifies podman's failures", () =>
    Effect.gen(function* () {
      const rt = yield* PodmanRuntime
      const missing = `${prefix}-missing`
      assert.deepInclude(yield* reasonOf(rt.apply(Action.Start({ ...base("x"), name: missing }))), {
        _tag: "NoSuchContainer",
        container: missing
      })
      assert.deepInclude(
        yield* reasonOf(rt.apply(Action.Stop({ ...base("x"), name: missing, timeoutSeconds: 0 }))),
        { _tag: "NoSuchContainer", container: missing }
      )
      assert.deepInclude(
        yield* reasonOf(rt.apply(Action.Restart({ ...base("x"), name: missing, timeoutSeconds: 0 }))),
        { _tag: "NoSuchContainer", container: missing }
      )

      const name = containerName("dup")
      const want = desired(name, busyboxV1, join(workDir, "dup"))
      yield* rt.apply(Action.Create({ ...base("x"), container: want }))
      assert.deepInclude(yield* reasonOf(rt.apply(Action.Create({ ...base("x"), container: want }))), {
        _tag: "NameInUse",
        container: name
      })

      const noImage = "localhost/archy-cli-test/no-such-image:1"
      const orphan = desired(containerName("orphan"), noImage, join(workDir, "orphan"))
      const reason = yield* reasonOf(rt.apply(Action.Create({ ...base("x"), container: orphan })))
      assert.strictEqual(reason._tag, "ImageMissing")
      assert.include(reason._tag === "ImageMissing" ? reason.image : "", noImage)

      // A port that cannot be bound is none of the above: the command (without env values) and stderr.
      const badPort = desired(containerName("badport"), busyboxV1, join(workDir, "badport"))
      const withPort: DesiredContainer = {
        ...badPort,
        spec: { ...badPort.spec, ports: [{ hostIp: "203.0.113.7", host: 1, container: 1, protocol: "tcp" }] }
      }
      yield* rt.apply(Action.Create({ ...base("x"), container: withPort }))
      const unexpected = yield* reasonOf(rt.apply(Action.Start({ ...base("x"), name: withPort.name })))
      assert.strictEqual(unexpected._tag, "UnexpectedOutput")
      if (unexpected._tag === "UnexpectedOutput") {
        assert.include(unexpected.operation, `start ${withPort.name}`)
        assert.match(unexpected.detail, /^exit \d+: /)
      }
      const createFailure = yield* reasonOf(
        rt.apply(
          Action.Create({
            ...base("x"),
            container: {
              ...withPort,
              spec: { ...withPort.spec, name: containerName("badcap"), capAdd: ["NOPE"] }
            }
          })
        )
      )
      assert.strictEqual(createFailure._tag, "UnexpectedOutput")
      if (createFailure._tag === "UnexpectedOutput") {
        assert.include(createFailure.operation, "-e GREETING=…")
        assert.notInclude(createFailure.operation, "hello")
      }
    }).pipe(run)
  )

  it.live("a missing binary or socket is PodmanUnreachable", () =>
    Effect.gen(function* () {
      const noBinary = yield* reasonOf(observe, { podman: join(workDir, "no-such-podman") })
      assert.strictEqual(noBinary._tag, "PodmanUnreachable")
      const noSocket = yield* reasonOf(observe, { url: `unix://${join(workDir, "no-such.sock")}` })
      assert.deepInclude(noSocket, {
        _tag: "PodmanUnreachable",
        endpoint: `podman --url unix://${workDir}/no-such.sock`
      })
    })
  )

  it.live("times out a call that hangs, and rejects output it cannot decode", () =>
    Effect.gen(function* () {
      const started = Date.now()
      const hang = yield* reasonOf(observe, {
        podman: fakePodman("hang", "exec sleep 30"),
        timeouts: { queryMs: 300 }
      })
      assert.deepInclude(hang, { _tag: "RuntimeTimeout", afterMs: 300 })
      assert.isBelow(Date.now() - started, 5000)

      const garbage = yield* reasonOf(observe, { podman: fakePodman("garbage", `echo '[{"Id": 1}]'`) })
      assert.strictEqual(garbage._tag, "UnexpectedOutput")
      if (garbage._tag === "UnexpectedOutput") assert.include(garbage.operation, "ps -a --format json")
    })
  )

  it.live("a steady observe is one podman call; image and network lists refresh after invalidation", () =>
    Effect.gen(function* () {
      const rt = yield* PodmanRuntime
      const name = containerName("calls")
      yield* rt.observe
      assert.strictEqual(yield* rt.calls, 3, "the first observe lists containers, images and networks")
      yield* rt.observe
      assert.strictEqual(yield* rt.calls, 4)

      yield* rt.apply(
        Action.Create({ ...base("x"), container: desired(name, busyboxV1, join(workDir, "calls")) })
      )
      yield* rt.apply(Action.Start({ ...base("x"), name }))
      const afterStart = yield* rt.calls
      yield* rt.observe
      assert.strictEqual(yield* rt.calls, afterStart + 1, "create and start keep the cache")

      yield* Effect.flip(rt.apply(Action.Start({ ...base("x"), name: `${prefix}-missing` })))
      const afterFailure = yield* rt.calls
      yield* rt.observe
      assert.strictEqual(yield* rt.calls, afterFailure + 3, "a failed apply invalidates the cache")

      const snapshot = yield* rt.observe
      const removeCalls = yield* rt.calls
      const id = snapshot.containers.find((c) => c.name === name)!.id
      yield* rt.apply(Action.Remove({ ...base("x"), name, containerId: id, timeoutSeconds: 0 }))
      assert.strictEqual(yield* rt.calls, removeCalls + 1)
      yield* rt.observe
      assert.strictEqual(yield* rt.calls, removeCalls + 2, "a removal keeps the cache")

      yield* rt.apply(Action.EnsureNetwork({ ...base("x"), network: cliTestNetwork }))
      const afterNetwork = yield* rt.calls
      yield* rt.observe
      assert.strictEqual(
        yield* rt.calls,
        afterNetwork + 1,
        "a network change lists again at once, not at the next observe"
      )
    }).pipe(run)
  )

  it.live("builds an image from a context, streaming its progress", () =>
    Effect.gen(function* () {
      const rt = yield* PodmanRuntime
      const context = join(workDir, "build")
      mkdirSync(context, { recursive: true })
      writeFileSync(join(context, "Containerfile"), `FROM ${busyboxV1}\nCOPY greeting /greeting\n`)
      writeFileSync(join(context, "greeting"), "hello\n")
      const ref = `localhost/archy-cli-test/built-${suffix}:1`
      imageNames.push(ref)
      const lines: Array<string> = []
      yield* rt.observe
      yield* rt.apply(
        Action.BuildImage({
          ...base(`image:${ref}`),
          source: { _tag: "Build", ref, context, containerfile: "Containerfile" }
        }),
        (line) => Effect.sync(() => lines.push(line))
      )
      assert.isTrue(
        lines.some((l) => l.startsWith("STEP 1/2")),
        lines.join("\n")
      )
      const images = (yield* rt.observe).images
      assert.isTrue(images.some((i) => i.names.includes(ref)))

      writeFileSync(join(context, "Containerfile.bad"), "FROM localhost/archy-cli-test/no-base:1\n")
      const reason = yield* Effect.flip(
        rt.apply(
          Action.BuildImage({
            ...base("x"),
            source: { _tag: "Build", ref: `${ref}-bad`, context, containerfile: "Containerfile.bad" }
          })
        )
      )
      assert.strictEqual(reason.reason._tag, "ImageMissing")
    }).pipe(run)
  )
})

describe.skipIf(podmanMissing !== undefined)("CliRuntime events and health checks", () => {
  // Recorded from `podman events --format json` (podman 4.3.1, attributes trimmed).
  const died =
    '{"ContainerExitCode":137,"ID":"25d5927e","Image":"localhost/archy-test/busybox:1","Name":"probe-ev1","Status":"died","Time":"2026-11-26T06:31:11.566621793Z","Type":"container","Attributes":{}}'
  const pull =
    '{"Name":"localhost/archy-test/busybox:1","Status":"pull","Time":"2026-11-26T06:31:11.312755654Z","Type":"image","Attributes":null}'
  const eventsFile = () => {
    const path = join(workDir, "events.jsonl")
    writeFileSync(path, `${died}\nnot json\n{}\n${pull}\n`)
    return path
  }
  const collect = Effect.gen(function* () {
    const rt = yield* PodmanRuntime
    const got: Array<RuntimeEvent> = []
    const exit = yield* rt.events.pipe(
      Stream.runForEach((e) => Effect.sync(() => got.push(e))),
      Effect.exit
    )
    return { got, exit, calls: yield* rt.calls }
  })

  it.live("events: podman's lines decoded, the rest skipped; the stream ends when podman exits 0", () =>
    Effect.gen(function* () {
      const argsFile = join(workDir, "events.args")
      const podman = fakePodman("events-ok", `echo "$*" > ${argsFile}\ncat ${eventsFile()}`)
      const { got, exit, calls } = yield* run(collect, { podman, url: "unix:///run/x.sock" })
      assert.strictEqual(exit._tag, "Success")
      assert.deepStrictEqual(got, [
        {
          type: "container",
          action: "died",
          id: "25d5927e",
          name: "probe-ev1",
          timeMs: Date.UTC(2026, 10, 26, 6, 31, 11, 566)
        },
        {
          type: "image",
          action: "pull",
          name: "localhost/archy-test/busybox:1",
          timeMs: Date.UTC(2026, 10, 26, 6, 31, 11, 312)
        }
      ])
      assert.strictEqual(calls, 1)
      assert.strictEqual(
        readFileSync(argsFile, "utf8").trim(),
        "--url unix:///run/x.sock events --format json"
      )
    })
  )

  it.live("events: podman failing ends the stream with its classified error, after what it printed", () =>
    Effect.gen(function* () {
      const podman = fakePodman(
        "events-fail",
        `cat ${eventsFile()}\necho 'Error: unable to connect to Podman socket: dial unix /run/x.sock: connection refused' >&2\nexit 125`
      )
      const { got, exit } = yield* run(collect, { podman })
      assert.strictEqual(got.length, 2)
      assert.strictEqual(exit._tag, "Failure")
      const error = exit._tag === "Failure" ? Cause.squash(exit.cause) : undefined
      assert.instanceOf(error, RuntimeError)
      if (error instanceof RuntimeError) assert.strictEqual(error.reason._tag, "PodmanUnreachable")
      const missing = yield* run(collect, { podman: join(workDir, "no-such-podman") })
      assert.strictEqual(missing.exit._tag, "Failure")
    })
  )

  it.live("events over --url: the stream ends (or fails) when the service stops", () =>
    Effect.gen(function* () {
      const own = yield* Effect.promise(() => startPodmanService())
      const fiber = yield* run(collect, { url: `unix://${own.socketPath}` }).pipe(Effect.forkChild)
      yield* Effect.sleep(1_000)
      const t0 = Date.now()
      yield* Effect.promise(() => own.stop())
      const outcome = yield* Fiber.join(fiber).pipe(
        Effect.timeoutOrElse({ duration: 15_000, orElse: () => Effect.succeed(undefined) })
      )
      assert.isDefined(outcome, "the stream was still open 15 s after the service stopped")
      const how =
        outcome?.exit._tag === "Failure" ? (Cause.pretty(outcome.exit.cause).split("\n")[0] ?? "") : "cleanly"
      console.info(
        `cli --url: the event stream ended ${Date.now() - t0} ms after the service was stopped: ${how}`
      )
      assert.strictEqual(eventProcesses(), 0)
    })
  )

  it.live(
    "healthcheck: exit 0 healthy, exit 1 unhealthy with the check's output, an overrun unhealthy, the rest errors",
    () =>
      Effect.gen(function* () {
        const inspect = join(workDir, "inspect.json")
        writeFileSync(
          inspect,
          JSON.stringify([
            {
              State: {
                Health: {
                  Status: "starting",
                  FailingStreak: 1,
                  Log: [{ ExitCode: 1, Output: "rpc not ready\n" }]
                }
              }
            }
          ])
        )
        const podman = fakePodman(
          "health",
          [
            `case "$1 $2 $3" in`,
            `  "healthcheck run good") exit 0 ;;`,
            `  "healthcheck run bad") echo unhealthy; exit 1 ;;`,
            `  "container inspect bad") cat ${inspect} ;;`,
            `  "healthcheck run slow") echo "Error: healthcheck command exceeded timeout of 1s" >&2; exit 125 ;;`,
            `  "healthcheck run plain") echo "Error: container abc has no defined healthcheck" >&2; exit 125 ;;`,
            `  *) echo 'Error: unable to look up gone to perform a health check: no container with name or ID "gone" found: no such container' >&2; exit 125 ;;`,
            "esac"
          ].join("\n")
        )
        const results = yield* run(
          Effect.gen(function* () {
            const rt = yield* PodmanRuntime
            const before = yield* rt.calls
            const values = yield* Effect.all([
              rt.healthcheck("good"),
              rt.healthcheck("bad"),
              rt.healthcheck("slow")
            ])
            const errors = yield* Effect.all([
              Effect.flip(rt.healthcheck("plain")),
              Effect.flip(rt.healthcheck("gone"))
            ])
            return { values, errors, calls: (yield* rt.calls) - before }
          }),
          { podman }
        )
        assert.deepStrictEqual(results.values, [
          { healthy: true, output: "" },
          { healthy: false, output: "rpc not ready" },
          { healthy: false, output: "healthcheck command exceeded timeout of 1s" }
        ])
        assert.deepStrictEqual(
          results.errors.map((e) => e.reason._tag),
          ["UnexpectedOutput", "NoSuchContainer"]
        )
        assert.include(results.errors[0]?.message, "no defined healthcheck")
        // One call each, and the inspect that fetched the failed check's output.
        assert.strictEqual(results.calls, 6)
      })
  )
})

describe.skipIf(podmanMissing !== undefined)("CliRuntime pulls through mirrors", () => {
  const registryStart = fileURLToPath(new URL("../../../test/registry/start", import.meta.url))
  const registryStop = fileURLToPath(new URL("../../../test/registry/stop", import.meta.url))
  // A registry of our own (address and storage), so suites using the default one are unaffected.
  const env = {
    ...process.env,
    ARCHY_TEST_REGISTRY_ADDR: `127.0.0.1:${15_000 + Math.floor(Math.random() * 5000)}`,
    ARCHY_TEST_REGISTRY_DIR: join(workDir, "registry")
  }
  let registry = ""
  const tag = `m-${suffix}`
  const upstream = `upstream.invalid/archy-cli-test/busybox:${tag}`

  beforeAll(() => {
    registry = execFileSync(registryStart, { env, encoding: "utf8", stdio: "pipe" }).trim()
    podman("push", "--tls-verify=false", busyboxV2, `${registry}/archy-cli-test/busybox:${tag}`)
    imageNames.push(upstream)
  })

  afterAll(() => {
    execFileSync(registryStop, { env, stdio: "ignore" })
  })

  it.live("skips a dead mirror, pulls from the next and names the image by its upstream ref", () =>
    Effect.gen(function* () {
      const rt = yield* PodmanRuntime
      const lines: Array<string> = []
      yield* rt.observe
      yield* rt.apply(
        Action.PullImage({ ...base(`image:${upstream}`), source: { _tag: "Registry", ref: upstream } }),
        (line) => Effect.sync(() => lines.push(line))
      )
      assert.isTrue(lines.some((l) => l.includes(`Trying to pull ${registry}/archy-cli-test/busybox:${tag}`)))
      const images = (yield* rt.observe).images
      const pulled = images.find((i) => i.names.includes(upstream))
      assert.isDefined(pulled)
      assert.isFalse(
        images.some((i) => i.names.some((n) => n.startsWith(`${registry}/`))),
        "the mirror's name is removed"
      )
    }).pipe((effect) =>
      run(effect, {
        mirrors: [
          { host: "127.0.0.1:1", insecure: true },
          { host: registry, insecure: true }
        ]
      })
    )
  )

  it.live("fails with ImageMissing listing every attempt when no source has the image", () =>
    Effect.gen(function* () {
      const rt = yield* PodmanRuntime
      const ref = `upstream.invalid/archy-cli-test/busybox:absent-${suffix}`
      const error = yield* Effect.flip(
        rt.apply(Action.PullImage({ ...base(`image:${ref}`), source: { _tag: "Registry", ref } }))
      )
      assert.strictEqual(error.reason._tag, "ImageMissing")
      if (error.reason._tag === "ImageMissing") {
        assert.strictEqual(error.reason.image, ref)
        assert.include(
          error.reason.detail,
          `${registry} (${registry}/archy-cli-test/busybox:absent-${suffix})`
        )
        assert.include(error.reason.detail, "upstream (")
      }
    }).pipe((effect) => run(effect, { mirrors: [{ host: registry, insecure: true }] }))
  )
})
