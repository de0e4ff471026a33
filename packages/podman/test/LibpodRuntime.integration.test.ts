import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Action } from "@archy/core/Action"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as LibpodApi from "../src/LibpodApi.ts"
import * as LibpodRuntime from "../src/LibpodRuntime.ts"
import type { RegistryMirror } from "../src/Mirrors.ts"
import type { RuntimeAction, RuntimeError } from "../src/PodmanRuntime.ts"
import { PodmanRuntime } from "../src/PodmanRuntime.ts"
import { actions, desiredContainer, runtimeContract, testImage } from "./contract.ts"
import {
  cleanup,
  type PodmanService,
  podmanCli,
  podmanMissing,
  runPrefix,
  startPodmanService
} from "./support/PodmanService.ts"

type Runtime = PodmanRuntime["Service"]

/**
 * Requests this process has open (the agent's sockets in use; idle keep-alive ones are not
 * counted): the libpod client sends through node's global agent.
 */
const requestsInFlight = (): number =>
  Object.values(http.globalAgent.sockets).reduce((n, sockets) => n + (sockets?.length ?? 0), 0)

/** Runs `f` with a fresh libpod runtime (fresh cache and call count) on `socketPath`. */
const withRuntime = <A, E>(
  options: LibpodRuntime.Options,
  f: (runtime: Runtime) => Effect.Effect<A, E>
): Promise<A> =>
  Effect.runPromise(
    Effect.gen(function* () {
      return yield* f(yield* PodmanRuntime)
    }).pipe(Effect.provide(LibpodRuntime.layer(options)))
  )

const failure = <A>(effect: Effect.Effect<A, RuntimeError>) => Effect.flip(effect)

const tempDirs: Array<string> = []
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "archy-libpod-"))
  tempDirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})

describe.skipIf(podmanMissing !== undefined)("LibpodRuntime against real podman", () => {
  let service: PodmanService | undefined
  const prefix = runPrefix("archy-lp")
  const builtImage = `localhost/${prefix}built:1`

  beforeAll(async () => {
    service = await startPodmanService()
  }, 60_000)

  afterAll(async () => {
    cleanup(prefix)
    podmanCli(["rmi", "-f", builtImage])
    await service?.stop()
  }, 60_000)

  const socketPath = () => {
    if (service === undefined) throw new Error("the podman service did not start")
    return service.socketPath
  }

  runtimeContract("libpod", () => LibpodRuntime.layer({ socketPath: socketPath() }), {
    callsPerSteadyObserve: 1,
    openSubscriptions: requestsInFlight
  })

  it("images and networks are fetched again only after changes or failures", async () => {
    const costs = await withRuntime({ socketPath: socketPath() }, (rt) =>
      Effect.gen(function* () {
        const cost = <A, E>(effect: Effect.Effect<A, E>) =>
          Effect.gen(function* () {
            const before = yield* rt.calls
            yield* effect
            return (yield* rt.calls) - before
          })
        const name = `${prefix}cache`
        return {
          cold: yield* cost(rt.observe),
          steady: yield* cost(rt.observe),
          create: yield* cost(rt.apply(actions.create(desiredContainer(name)))),
          afterCreate: yield* cost(rt.observe),
          afterFailure: yield* cost(
            rt.apply(actions.start(`${prefix}missing`)).pipe(Effect.ignore, Effect.andThen(rt.observe))
          ),
          steadyAgain: yield* cost(rt.observe),
          afterNetwork: yield* cost(rt.apply(actions.ensureNetwork()).pipe(Effect.andThen(rt.observe))),
          afterRemove: yield* cost(rt.apply(actions.remove(name, name)).pipe(Effect.andThen(rt.observe)))
        }
      })
    )
    assert.deepStrictEqual(costs, {
      cold: 3,
      steady: 1,
      create: 1,
      afterCreate: 1,
      afterFailure: 1 + 3,
      steadyAgain: 1,
      // The images and networks are listed again right after a change to them, not at the next
      // observe: the next pass still costs one call.
      afterNetwork: 1 + 2 + 1,
      afterRemove: 1 + 1
    })
  })

  it("BuildImage builds through the same podman, streaming its output", async () => {
    const context = tempDir()
    writeFileSync(join(context, "Containerfile"), `FROM ${testImage}\nLABEL archy.test=built\n`)
    const lines: Array<string> = []
    const build: RuntimeAction = Action.BuildImage({
      target: `image:${builtImage}`,
      cause: "test",
      source: { _tag: "Build", ref: builtImage, context, containerfile: "Containerfile" }
    })
    const snapshot = await withRuntime({ socketPath: socketPath() }, (rt) =>
      rt.observe.pipe(
        Effect.andThen(rt.apply(build, (line) => Effect.sync(() => lines.push(line)))),
        Effect.andThen(rt.observe)
      )
    )
    assert.isTrue(
      snapshot.images.some((i) => i.names.includes(builtImage)),
      "the built image is observed (the cache was refreshed)"
    )
    assert.isTrue(
      lines.some((l) => l.includes("STEP")),
      lines.join("\n")
    )
  })

  it("BuildImage from a base that is not here fails with ImageMissing", async () => {
    const context = tempDir()
    writeFileSync(join(context, "Containerfile"), "FROM localhost/archy-test/does-not-exist:1\n")
    const error = await withRuntime({ socketPath: socketPath() }, (rt) =>
      failure(
        rt.apply(
          Action.BuildImage({
            target: "image:x",
            cause: "test",
            source: {
              _tag: "Build",
              ref: `localhost/${prefix}broken:1`,
              context,
              containerfile: "Containerfile"
            }
          })
        )
      )
    )
    assert.strictEqual(error.reason._tag, "ImageMissing", error.message)
  })

  it("the event stream ends (or fails) when the service stops, within seconds", async () => {
    const own = await startPodmanService()
    let stopped = false
    try {
      const outcome = await withRuntime({ socketPath: own.socketPath }, (rt) =>
        Effect.gen(function* () {
          const fiber = yield* rt.events.pipe(Stream.runDrain, Effect.exit, Effect.forkChild)
          // Let the request reach the service before stopping it.
          yield* Effect.sleep(300)
          const t0 = Date.now()
          yield* Effect.promise(() => own.stop())
          stopped = true
          const exit = yield* Fiber.join(fiber).pipe(
            Effect.timeoutOrElse({ duration: 10_000, orElse: () => Effect.succeed(undefined) })
          )
          return { exit, afterMs: Date.now() - t0 }
        })
      )
      assert.isDefined(outcome.exit, "the stream was still open 10 s after the service stopped")
      console.info(
        `libpod: the event stream ended ${outcome.afterMs} ms after the service was stopped: ${outcome.exit?._tag === "Failure" ? Cause.pretty(outcome.exit.cause).split("\n")[0] : "cleanly"}`
      )
      assert.isFalse(outcome.exit?._tag === "Failure" && Cause.hasInterrupts(outcome.exit.cause))
    } finally {
      if (!stopped) await own.stop()
    }
  })

  it("PullImage when no candidate answers: ImageMissing naming every attempt", async () => {
    const ref = "127.0.0.1:2/archy-test/nothing:1"
    const mirrors: ReadonlyArray<RegistryMirror> = [{ host: "127.0.0.1:1", insecure: true }]
    const lines: Array<string> = []
    const error = await withRuntime({ socketPath: socketPath(), mirrors }, (rt) =>
      failure(
        rt.apply(
          Action.PullImage({ target: `image:${ref}`, cause: "test", source: { _tag: "Registry", ref } }),
          (line) => Effect.sync(() => lines.push(line))
        )
      )
    )
    assert.strictEqual(error.reason._tag, "ImageMissing")
    assert.include(error.message, "127.0.0.1:1/archy-test/nothing:1 (127.0.0.1:1)")
    assert.include(error.message, `${ref} (upstream)`)
    assert.isTrue(
      lines.some((l) => l.includes("Trying to pull")),
      lines.join("\n")
    )
  })
})

// ---------------------------------------------------------------------------------------------
// Against a fake podman on a unix socket: deadlines, odd answers, streaming. No podman needed.
// ---------------------------------------------------------------------------------------------

interface Seen {
  readonly method: string
  readonly url: string
  readonly body: string
}

type Handler = (seen: Seen, res: http.ServerResponse, req: http.IncomingMessage) => void

const fakePodman = async (handler: Handler) => {
  const socketPath = join(tempDir(), "api.sock")
  const seen: Array<Seen> = []
  const closed: Array<string> = []
  const server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const s = {
        method: req.method ?? "",
        url: decodeURIComponent(req.url ?? ""),
        body: Buffer.concat(chunks).toString()
      }
      seen.push(s)
      res.on("close", () => {
        if (!res.writableFinished) closed.push(s.url)
      })
      handler(s, res, req)
    })
  })
  await new Promise<void>((resolve) => server.listen(socketPath, resolve))
  return {
    socketPath,
    seen,
    /** Requests whose connection closed before the answer was complete. */
    closed,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

const json = (res: http.ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "Content-Type": "application/json" })
  res.end(JSON.stringify(body))
}

/** Answers `[]` to whatever `handled` does not answer (the list endpoints). */
const lists =
  (handled: (seen: Seen, res: http.ServerResponse) => boolean): Handler =>
  (seen, res) => {
    if (!handled(seen, res)) json(res, 200, [])
  }

describe("LibpodRuntime against a fake podman", () => {
  it("a missing socket is PodmanUnreachable naming the socket", async () => {
    const socketPath = join(tempDir(), "nobody.sock")
    const error = await withRuntime({ socketPath }, (rt) => failure(rt.observe))
    assert.strictEqual(error.reason._tag, "PodmanUnreachable")
    assert.include(error.message, socketPath)
  })

  it("a slow answer is a RuntimeTimeout, and the request is aborted", async () => {
    const fake = await fakePodman(
      // Never answers the container list.
      lists((seen) => seen.url.includes("/containers/json"))
    )
    try {
      const t0 = Date.now()
      const error = await withRuntime({ socketPath: fake.socketPath, timeouts: { requestMs: 300 } }, (rt) =>
        failure(rt.observe)
      )
      assert.isBelow(Date.now() - t0, 5_000)
      assert.strictEqual(error.reason._tag, "RuntimeTimeout")
      assert.deepInclude(error.reason, { operation: "list containers", afterMs: 300 })
      await new Promise((r) => setTimeout(r, 100))
      assert.deepStrictEqual(fake.closed, ["/v4.0.0/libpod/containers/json?all=true"])
    } finally {
      await fake.close()
    }
  })

  it("an answer of an unexpected shape is UnexpectedOutput, not a crash", async () => {
    const fake = await fakePodman(
      lists((seen, res) => {
        if (seen.url.includes("/containers/json")) json(res, 200, [{ Id: 5, State: "running" }])
        else if (seen.url.includes("/images/json")) {
          res.writeHead(200)
          res.end("<html>not json</html>")
        } else return false
        return true
      })
    )
    try {
      const error = await withRuntime({ socketPath: fake.socketPath }, (rt) => failure(rt.observe))
      assert.strictEqual(error.reason._tag, "UnexpectedOutput")
      assert.match(error.message, /^unexpected podman output for list (containers|images): /)
    } finally {
      await fake.close()
    }
  })

  it("HTTP errors are classified from podman's answer", async () => {
    const fake = await fakePodman((seen, res) => {
      if (seen.url.includes("/gone/")) {
        json(res, 404, {
          cause: "no such container",
          message: 'no container with name or ID "gone" found',
          response: 404
        })
      } else if (seen.url.includes("/containers/create")) {
        json(res, 500, {
          cause: "that name is already in use",
          message: 'creating container storage: the container name "dup" is already in use by abc',
          response: 500
        })
      } else json(res, 500, { cause: "boom", message: "something broke: boom", response: 500 })
    })
    try {
      const errors = await withRuntime({ socketPath: fake.socketPath }, (rt) =>
        Effect.all([
          failure(rt.apply(actions.start("gone"))),
          failure(rt.apply(actions.create(desiredContainer("dup")))),
          failure(rt.apply(actions.stop("other")))
        ])
      )
      assert.deepStrictEqual(
        errors.map((e) => e.reason._tag),
        ["NoSuchContainer", "NameInUse", "UnexpectedOutput"]
      )
      assert.include(errors[0]?.message, "gone")
      assert.include(errors[1]?.message, "dup")
      assert.include(errors[2]?.message, "HTTP 500")
      assert.include(errors[2]?.message, "something broke: boom")
    } finally {
      await fake.close()
    }
  })

  it("Remove of a gone container, Start of a started one and an existing network are fine", async () => {
    const fake = await fakePodman((seen, res) => {
      if (seen.method === "DELETE")
        json(res, 404, { cause: "no such container", message: "gone", response: 404 })
      else if (seen.url.includes("/start")) {
        res.writeHead(304)
        res.end()
      } else if (seen.url.includes("/networks/create")) {
        json(res, 409, {
          cause: "network already exists",
          message: "network name n already used",
          response: 409
        })
      } else json(res, 500, { message: "unexpected" })
    })
    try {
      await withRuntime({ socketPath: fake.socketPath }, (rt) =>
        Effect.all([
          rt.apply(actions.remove("x", "abc", 3)),
          rt.apply(actions.start("x")),
          rt.apply(actions.ensureNetwork())
        ])
      )
      // (The image and network lists a change triggers are left out: they run concurrently.)
      const changes = fake.seen.filter((s) => s.method !== "GET")
      assert.deepStrictEqual(
        changes.map((s) => `${s.method} ${s.url}`),
        [
          "DELETE /v4.0.0/libpod/containers/abc?force=true&timeout=3",
          "POST /v4.0.0/libpod/containers/x/start",
          "POST /v4.0.0/libpod/networks/create"
        ]
      )
      assert.deepStrictEqual(JSON.parse(changes[2]?.body ?? ""), {
        name: "archy-ct-net",
        driver: "bridge",
        subnets: [{ subnet: "10.89.250.0/24", gateway: "10.89.250.1" }]
      })
    } finally {
      await fake.close()
    }
  })

  it("a pull from a mirror streams progress in order, then takes the upstream name", async () => {
    const ref = "docker.io/lightninglabs/lnd:v0.19.3-beta"
    const fake = await fakePodman(
      lists((seen, res) => {
        if (seen.url.includes("/tag?") || seen.url.includes("/untag?")) {
          res.writeHead(201)
          res.end()
          return true
        }
        if (!seen.url.includes("/images/pull")) return false
        res.writeHead(200, { "Content-Type": "application/json" })
        const send = (o: unknown) => res.write(`${JSON.stringify(o)}\n`)
        if (seen.url.includes("mirror-a")) {
          send({ stream: "Trying to pull mirror-a...\n" })
          send({ error: "pinging container registry mirror-a: connection refused" })
          res.end()
          return true
        }
        send({ stream: "Trying to pull mirror-b...\n" })
        setTimeout(() => send({ stream: "Copying blob 123\n" }), 20)
        setTimeout(() => {
          // A line split across two writes.
          res.write('{"stream":"Writing manif')
          res.write('est\\n"}\n')
        }, 40)
        setTimeout(() => res.end(`${JSON.stringify({ images: ["abc"], id: "abc" })}\n`), 60)
        return true
      })
    )
    try {
      const lines: Array<string> = []
      const mirrors: ReadonlyArray<RegistryMirror> = [
        { host: "mirror-a:5000", insecure: true },
        { host: "mirror-b", insecure: false }
      ]
      await withRuntime({ socketPath: fake.socketPath, mirrors }, (rt) =>
        rt.apply(
          Action.PullImage({ target: `image:${ref}`, cause: "test", source: { _tag: "Registry", ref } }),
          (line) => Effect.sync(() => lines.push(line))
        )
      )
      assert.deepStrictEqual(
        fake.seen.filter((s) => s.method !== "GET").map((s) => `${s.method} ${s.url}`),
        [
          "POST /v4.0.0/libpod/images/pull?reference=mirror-a:5000/lightninglabs/lnd:v0.19.3-beta&tlsVerify=false&policy=always",
          "POST /v4.0.0/libpod/images/pull?reference=mirror-b/lightninglabs/lnd:v0.19.3-beta&tlsVerify=true&policy=always",
          "POST /v4.0.0/libpod/images/mirror-b/lightninglabs/lnd:v0.19.3-beta/tag?repo=docker.io/lightninglabs/lnd&tag=v0.19.3-beta",
          "POST /v4.0.0/libpod/images/docker.io/lightninglabs/lnd:v0.19.3-beta/untag?repo=mirror-b/lightninglabs/lnd&tag=v0.19.3-beta"
        ]
      )
      const podmanLines = lines.filter((l) => !l.startsWith("pull"))
      assert.deepStrictEqual(podmanLines, [
        "Trying to pull mirror-a...",
        "Trying to pull mirror-b...",
        "Copying blob 123",
        "Writing manifest"
      ])
    } finally {
      await fake.close()
    }
  })
  it("events: decoded in order, lines that do not fit skipped, one call, ends with the answer", async () => {
    // Recorded from podman 4.3.1's `/libpod/events?stream=true` (attributes trimmed).
    const start =
      '{"status":"start","id":"25d5927e","from":"localhost/archy-test/busybox:1","Type":"container","Action":"start","Actor":{"ID":"25d5927e","Attributes":{"containerExitCode":"0","image":"localhost/archy-test/busybox:1","name":"probe-ev1","podId":""}},"scope":"local","time":1795674671,"timeNano":1795674671505910912}'
    const died =
      '{"status":"died","id":"25d5927e","from":"localhost/archy-test/busybox:1","Type":"container","Action":"died","Actor":{"ID":"25d5927e","Attributes":{"containerExitCode":"137","image":"localhost/archy-test/busybox:1","name":"probe-ev1","podId":""}},"scope":"local","time":1795674671,"timeNano":1795674671566621793}'
    const pull =
      '{"status":"pull","Type":"image","Action":"pull","Actor":{"ID":"","Attributes":{"containerExitCode":"0","image":"","name":"localhost/archy-test/busybox:1","podId":""}},"scope":"local","time":1795674671,"timeNano":1795674671312755654}'
    const fake = await fakePodman((seen, res) => {
      if (!seen.url.includes("/events")) return json(res, 500, { message: "unexpected" })
      res.writeHead(200, { "Content-Type": "application/json" })
      res.write(`${start}\n`)
      res.write("not json\n{}\n")
      // A line split across two writes.
      res.write(died.slice(0, 20))
      setTimeout(() => {
        res.write(`${died.slice(20)}\n`)
        res.end(`${pull}\n`)
      }, 30)
    })
    try {
      const { events, calls } = await withRuntime({ socketPath: fake.socketPath }, (rt) =>
        Effect.all({ events: Stream.runCollect(rt.events), calls: rt.calls })
      )
      assert.deepStrictEqual(events, [
        { type: "container", action: "start", id: "25d5927e", name: "probe-ev1", timeMs: 1795674671505 },
        { type: "container", action: "died", id: "25d5927e", name: "probe-ev1", timeMs: 1795674671566 },
        { type: "image", action: "pull", name: "localhost/archy-test/busybox:1", timeMs: 1795674671312 }
      ])
      assert.strictEqual(calls, 1)
      assert.deepStrictEqual(
        fake.seen.map((s) => `${s.method} ${s.url}`),
        ["GET /v4.0.0/libpod/events?stream=true"]
      )
    } finally {
      await fake.close()
    }
  })

  it("events: no deadline once the answer has begun; ending the stream aborts the request", async () => {
    const fake = await fakePodman((_seen, res) => {
      res.writeHead(200, { "Content-Type": "application/json" })
      res.write(
        `${JSON.stringify({ Type: "container", Action: "start", Actor: { ID: "x", Attributes: { name: "x" } }, time: 1 })}\n`
      )
      // …and nothing more, for longer than the request deadline.
    })
    try {
      const got = await withRuntime({ socketPath: fake.socketPath, timeouts: { requestMs: 200 } }, (rt) =>
        Effect.gen(function* () {
          const fiber = yield* rt.events.pipe(Stream.runCollect, Effect.forkChild)
          yield* Effect.sleep(600)
          const still = fiber.pollUnsafe() === undefined
          yield* Fiber.interrupt(fiber)
          return still
        })
      )
      assert.isTrue(got, "the stream is still open after the request deadline")
      await new Promise((r) => setTimeout(r, 100))
      assert.deepStrictEqual(fake.closed, ["/v4.0.0/libpod/events?stream=true"])
    } finally {
      await fake.close()
    }
  })

  it("events: an answer that does not begin in time is a RuntimeTimeout; an error status is classified", async () => {
    const fake = await fakePodman((seen, res) => {
      if (seen.url.includes("filters"))
        json(res, 500, { cause: "boom", message: "events broke", response: 500 })
      // Otherwise never answers.
    })
    try {
      const [slow, broken] = await withRuntime(
        { socketPath: fake.socketPath, timeouts: { requestMs: 200 } },
        (rt) =>
          Effect.all([
            failure(Stream.runDrain(rt.events)),
            // The same request with a query the fake refuses.
            failure(
              Stream.runDrain(
                LibpodApi.make({ socketPath: fake.socketPath }).lines({
                  operation: "follow events",
                  method: "GET",
                  path: "/events?stream=true&filters=x"
                })
              )
            )
          ])
      )
      assert.strictEqual(slow.reason._tag, "RuntimeTimeout")
      assert.deepInclude(slow.reason, { operation: "follow events", afterMs: 200 })
      assert.strictEqual(broken.reason._tag, "UnexpectedOutput")
      assert.include(broken.message, "events broke")
    } finally {
      await fake.close()
    }
  })

  it("healthcheck: statuses, the failed check's output, a check that overran, and errors", async () => {
    const fake = await fakePodman((seen, res) => {
      const name = /containers\/([^/]+)\//.exec(seen.url)?.[1] ?? ""
      if (seen.url.endsWith("/json")) {
        return json(res, 200, {
          State: {
            Health: {
              Status: "unhealthy",
              Log: [
                { ExitCode: 0, Output: "ok" },
                { ExitCode: 1, Output: "rpc not ready\n" }
              ]
            }
          }
        })
      }
      switch (name) {
        case "good":
          return json(res, 200, { Status: "healthy", FailingStreak: 0, Log: null })
        case "bad":
          return json(res, 200, { Status: "unhealthy", FailingStreak: 0, Log: null })
        case "slow":
          return json(res, 500, {
            cause: "healthcheck command exceeded timeout of 2s",
            message: "healthcheck command exceeded timeout of 2s",
            response: 500
          })
        case "plain":
          return json(res, 409, {
            cause: "container abc has no defined healthcheck",
            message: "container abc has no defined healthcheck",
            response: 409
          })
        case "odd":
          return json(res, 200, { Status: "confused" })
        default:
          return json(res, 404, {
            cause: "no such container",
            message: `unable to look up ${name} to perform a health check: no such container`,
            response: 404
          })
      }
    })
    try {
      const results = await withRuntime({ socketPath: fake.socketPath }, (rt) =>
        Effect.all([rt.healthcheck("good"), rt.healthcheck("bad"), rt.healthcheck("slow")])
      )
      assert.deepStrictEqual(results, [
        { healthy: true, output: "" },
        { healthy: false, output: "rpc not ready" },
        { healthy: false, output: "healthcheck command exceeded timeout of 2s" }
      ])
      const errors = await withRuntime({ socketPath: fake.socketPath }, (rt) =>
        Effect.all([
          failure(rt.healthcheck("plain")),
          failure(rt.healthcheck("gone")),
          failure(rt.healthcheck("odd"))
        ])
      )
      assert.deepStrictEqual(
        errors.map((e) => e.reason._tag),
        ["UnexpectedOutput", "NoSuchContainer", "UnexpectedOutput"]
      )
      assert.include(errors[0]?.message, "no defined healthcheck")
      assert.include(errors[1]?.message, "gone")
    } finally {
      await fake.close()
    }
  })

  it("inspect: podman 4.3's answer mapped, Path + Args as the process, 404 is NoSuchContainer", async () => {
    // Trimmed from podman 4.3.1's answer for a container with an entrypoint of two words.
    const answer = {
      Name: "app",
      Path: "/bin/sh",
      Args: ["-c", "echo x y"],
      Config: {
        Env: ["PATH=/bin", "TERM=xterm", "container=podman", "RPC_USER=archy"],
        Cmd: null,
        Entrypoint: "/bin/sh -c echo x y",
        Labels: { "archy.app": "app" }
      },
      HostConfig: { ExtraHosts: ["host.archipelago:10.89.0.1"] }
    }
    const fake = await fakePodman((seen, res) => {
      if (seen.url === "/v4.0.0/libpod/containers/app/json") return json(res, 200, answer)
      if (seen.url === "/v4.0.0/libpod/containers/bare/json") {
        return json(res, 200, { Name: "/bare", Config: { Env: null, Labels: null, Cmd: ["/bin/true"] } })
      }
      return json(res, 404, {
        cause: "no such container",
        message: 'no container with name or ID "gone" found: no such container',
        response: 404
      })
    })
    try {
      const [app, bare, gone, calls] = await withRuntime({ socketPath: fake.socketPath }, (rt) =>
        Effect.all([rt.inspect("app"), rt.inspect("bare"), failure(rt.inspect("gone")), rt.calls])
      )
      assert.deepStrictEqual(app, {
        name: "app",
        env: ["PATH=/bin", "TERM=xterm", "container=podman", "RPC_USER=archy"],
        args: ["/bin/sh", "-c", "echo x y"],
        labels: { "archy.app": "app" },
        extraHosts: ["host.archipelago:10.89.0.1"]
      })
      assert.deepStrictEqual(bare, { name: "bare", env: [], args: ["/bin/true"], labels: {}, extraHosts: [] })
      assert.strictEqual(gone.reason._tag, "NoSuchContainer")
      assert.deepInclude(gone.reason, { container: "gone" })
      assert.strictEqual(calls, 3)
    } finally {
      await fake.close()
    }
  })
})
