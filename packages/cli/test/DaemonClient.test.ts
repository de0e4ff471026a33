import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import { TestClock } from "effect/testing"
import { call, DaemonRpcError, DaemonTimeout, DaemonUnreachable, findDaemon } from "../src/DaemonClient.ts"

const token = "stub-daemon-token"

interface Seen {
  readonly auth: string | undefined
  readonly body: unknown
}

/** A stand-in for the daemon's API: /healthz, and /rpc answering by method name. */
const stubDaemon = (options: { readonly health?: "ok" | "down" | "hang" } = {}) =>
  Effect.gen(function* () {
    const seen: Array<Seen> = []
    const aborted: Array<string> = []
    let healthProbes = 0
    const handle = (req: IncomingMessage, res: ServerResponse, text: string) => {
      if (req.url === "/healthz") {
        healthProbes++
        if (options.health === "hang") return
        if (options.health === "down") return res.writeHead(503).end("starting")
        return res.writeHead(200, { "Content-Type": "text/plain" }).end("ok")
      }
      const json = (status: number, body: unknown) =>
        res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body))
      const body = JSON.parse(text) as { id: number; method: string; params?: { id?: string } }
      seen.push({ auth: req.headers.authorization, body })
      if (req.headers.authorization !== `Bearer ${token}`)
        return json(401, {
          jsonrpc: "2.0",
          id: null,
          error: { code: -32001, message: "missing or invalid bearer token" }
        })
      switch (body.method) {
        case "package.list":
          return json(200, { jsonrpc: "2.0", id: body.id, result: [{ id: "bitcoin" }] })
        case "system.reconcile":
          return json(200, { jsonrpc: "2.0", id: body.id, result: null })
        case "package.install":
          return json(200, {
            jsonrpc: "2.0",
            id: body.id,
            error: { code: -32602, message: `no app ${body.params?.id}` }
          })
        case "package.stop":
          res.on("close", () => aborted.push(body.method))
          return
        case "garbage":
          return res.writeHead(502).end("<html>bad gateway</html>")
        default:
          return json(200, {
            jsonrpc: "2.0",
            id: body.id,
            error: { code: -32601, message: "Method not found" }
          })
      }
    }
    const server = yield* Effect.acquireRelease(
      Effect.callback<ReturnType<typeof createServer>>((resume) => {
        const server = createServer((req, res) => {
          const chunks: Array<Buffer> = []
          req.on("data", (c: Buffer) => chunks.push(c))
          req.on("end", () => handle(req, res, Buffer.concat(chunks).toString("utf8")))
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.callback<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    )
    return { port: (server.address() as AddressInfo).port, seen, aborted, healthProbes: () => healthProbes }
  })

/** A port nothing listens on (it was free a moment ago). */
const freePort = Effect.callback<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

const withStateDir = <A, E, R>(f: (stateDir: string) => Effect.Effect<A, E, R>, tokenText?: string) =>
  Effect.gen(function* () {
    const stateDir = mkdtempSync(join(tmpdir(), "archy-client-"))
    if (tokenText !== undefined) {
      mkdirSync(join(stateDir, "secrets"), { mode: 0o700 })
      writeFileSync(join(stateDir, "secrets", "api-token"), tokenText, { mode: 0o600 })
    }
    return yield* f(stateDir).pipe(
      Effect.ensuring(Effect.sync(() => rmSync(stateDir, { recursive: true, force: true })))
    )
  })

describe("call", () => {
  it.live("sends a JSON-RPC 2.0 request with the bearer token and gives the result", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { port, seen } = yield* stubDaemon()
        const result = yield* call("package.list", undefined, { port, token })
        assert.deepStrictEqual(result, [{ id: "bitcoin" }])
        assert.strictEqual(yield* call("system.reconcile", {}, { port, token: Redacted.make(token) }), null)
        assert.strictEqual(seen[0]?.auth, `Bearer ${token}`)
        const [first, second] = seen.map((s) => s.body as Record<string, unknown>)
        assert.isDefined(first)
        assert.isDefined(second)
        assert.strictEqual(first!.jsonrpc, "2.0")
        assert.strictEqual(first!.method, "package.list")
        assert.notProperty(first, "params")
        assert.isNumber(first!.id)
        assert.deepStrictEqual(second!.params, {})
      })
    )
  )

  it.live("a JSON-RPC error is a DaemonRpcError with its code and message", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { port } = yield* stubDaemon()
        const error = yield* Effect.flip(call("package.install", { id: "foo" }, { port, token }))
        assert.instanceOf(error, DaemonRpcError)
        assert.deepStrictEqual(
          { code: error.code, message: error.message },
          { code: -32602, message: "no app foo" }
        )

        const unauthorized = yield* Effect.flip(call("package.list", undefined, { port, token: "wrong" }))
        assert.instanceOf(unauthorized, DaemonRpcError)
        assert.strictEqual(unauthorized.code, -32001)

        const garbage = yield* Effect.flip(call("garbage", undefined, { port, token }))
        assert.instanceOf(garbage, DaemonRpcError)
        assert.strictEqual(garbage.code, -32603)
        assert.include(garbage.message, "HTTP 502")
      })
    )
  )

  it.live("nothing listening is DaemonUnreachable", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const error = yield* Effect.flip(call("package.list", undefined, { port, token }))
      assert.instanceOf(error, DaemonUnreachable)
      assert.strictEqual(error.port, port)
      assert.include(error.message, "nothing listens")
    })
  )

  it.live("an answer slower than timeoutMs is DaemonTimeout, and the request is abandoned", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { port, aborted } = yield* stubDaemon()
        const error = yield* Effect.flip(
          call("package.stop", { id: "bitcoin" }, { port, token, timeoutMs: 100 })
        )
        assert.instanceOf(error, DaemonTimeout)
        assert.strictEqual(error.method, "package.stop")
        yield* Effect.sleep(50)
        assert.deepStrictEqual(aborted, ["package.stop"])
      })
    )
  )
})

describe("findDaemon", () => {
  it.live("finds a daemon that answers /healthz, with the token from the state dir", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { port } = yield* stubDaemon()
        const connection = yield* withStateDir((stateDir) => findDaemon(stateDir, port), `${token}\n`)
        assert.isDefined(connection)
        assert.strictEqual(connection!.port, port)
        assert.strictEqual(Redacted.value(connection!.token), token)
        assert.notInclude(String(connection!.token), token)
        assert.deepStrictEqual(yield* call("package.list", undefined, connection!), [{ id: "bitcoin" }])
      })
    )
  )

  it.live("is undefined without a readable, non-empty token file", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { port } = yield* stubDaemon()
        assert.isUndefined(yield* withStateDir((stateDir) => findDaemon(stateDir, port)))
        assert.isUndefined(yield* withStateDir((stateDir) => findDaemon(stateDir, port), "\n"))
      })
    )
  )

  it.live("is undefined when nothing listens or the health check fails", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      assert.isUndefined(yield* withStateDir((stateDir) => findDaemon(stateDir, port), token))
      const down = yield* Effect.scoped(
        Effect.flatMap(stubDaemon({ health: "down" }), ({ port }) =>
          withStateDir((stateDir) => findDaemon(stateDir, port), token)
        )
      )
      assert.isUndefined(down)
    })
  )

  // On the TestClock: the probe's timeout is the Clock's, so no wall time is measured here.
  it.effect("gives up on a health check that hangs after 500 ms", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const stub = yield* stubDaemon({ health: "hang" })
        const probe = yield* withStateDir((stateDir) => findDaemon(stateDir, stub.port), token).pipe(
          Effect.forkChild
        )
        // Real I/O: once the stub holds the request, the probe's timeout is on the clock.
        while (stub.healthProbes() === 0) yield* Effect.promise(() => new Promise((r) => setTimeout(r, 10)))
        yield* TestClock.adjust("400 millis")
        assert.isUndefined(probe.pollUnsafe(), "the probe gave up before 400 ms")
        yield* TestClock.adjust("1600 millis")
        assert.isUndefined(yield* Fiber.join(probe))
      })
    )
  )
})
