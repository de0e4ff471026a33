import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { request } from "node:http"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SecretStore } from "@archy/engine/SecretStore"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { ensureToken, maxBodyBytes, serve } from "../src/Api.ts"
import { type ActionView, OperationError, Operations } from "../src/Operations.ts"

const token = "s3cret-api-token-for-tests"
const secretInDefect = "defect-detail-that-must-not-leak"

const action: ActionView = { kind: "CreateContainer", target: "container:bitcoin", cause: "missing" }

/** A fake Operations that records each call as `method(arg)`. */
const fakeOperations = (calls: Array<string>) => {
  const record = (call: string) => Effect.sync(() => void calls.push(call))
  const actions = (name: string) => (id: string) => {
    if (id === "foo") return Effect.fail(new OperationError({ code: -32602, message: "no app foo" }))
    if (id === "boom") return Effect.die(new Error(secretInDefect))
    if (id === "stuck") return Effect.never
    return record(`${name}(${id})`).pipe(Effect.as([action]))
  }
  return Layer.succeed(
    Operations,
    Operations.of({
      list: record("list()").pipe(
        Effect.as([
          {
            id: "bitcoin",
            name: "Bitcoin Core",
            version: "28.1",
            description: "a node",
            category: "bitcoin",
            installed: true,
            running: true
          }
        ])
      ),
      status: (id) =>
        record(`status(${id ?? ""})`).pipe(
          Effect.as([{ id: id ?? "bitcoin", installed: true, stopped: false, containers: [], settings: [] }])
        ),
      install: actions("install"),
      uninstall: actions("uninstall"),
      start: actions("start"),
      stop: actions("stop"),
      restart: actions("restart"),
      update: (request) =>
        record(`update(${request.id},${request.image ?? ""},${request.container ?? ""})`).pipe(
          Effect.as({ id: request.id, outcome: "unchanged" as const, changes: [], reason: "", actions: [] })
        ),
      rollback: (id) =>
        record(`rollback(${id})`).pipe(
          Effect.as({ id, outcome: "rolled-back" as const, changes: [], reason: "", actions: [] })
        ),
      resumeUpgrades: Effect.void,
      configure: (id, settings) =>
        id === "foo"
          ? Effect.fail(new OperationError({ code: -32602, message: "foo: prune: expected an integer >= 0" }))
          : record(`configure(${id} ${JSON.stringify(settings)})`).pipe(
              Effect.as({ changed: Object.keys(settings), actions: [action] })
            ),
      plan: record("plan()").pipe(Effect.as([action])),
      reconcile: record("reconcile()").pipe(Effect.as([])),
      health: record("health()").pipe(
        Effect.as({ podman: "reachable" as const, catalogIssues: 0, uptimeSeconds: 12 })
      ),
      updateCheck: record("updateCheck()").pipe(Effect.as({ latest: "2", available: true })),
      updateApply: record("updateApply()").pipe(Effect.as({ from: "1", to: "2" })),
      updateStatus: record("updateStatus()").pipe(Effect.as({ current: "1" })),
      updateRollback: record("updateRollback()").pipe(Effect.as({ outcome: "rolled-back" }))
    })
  )
}

interface Server {
  readonly port: number
  readonly calls: Array<string>
}

const withServer = <A, E>(
  f: (server: Server) => Effect.Effect<A, E>,
  options: { readonly methodTimeoutMs?: number } = {}
) => {
  const calls: Array<string> = []
  return Effect.scoped(
    serve({ port: 0, token: Redacted.make(token), ...options }).pipe(
      Effect.flatMap(({ port }) => f({ port, calls }))
    )
  ).pipe(Effect.provide(fakeOperations(calls)))
}

interface Response {
  readonly status: number
  readonly text: string
  readonly json: unknown
}

const http = (
  port: number,
  init: { readonly method?: string; readonly path?: string; readonly headers?: Record<string, string> },
  body?: string | ReadonlyArray<string>
) =>
  Effect.callback<Response, Error>((resume) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: init.method ?? "POST",
        path: init.path ?? "/rpc",
        headers: init.headers ?? {}
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          resume(Effect.succeed({ status: res.statusCode ?? 0, text, json }))
        })
      }
    )
    req.on("error", (e) => resume(Effect.fail(e)))
    if (typeof body === "string") req.end(body)
    else if (body !== undefined) {
      for (const chunk of body) req.write(chunk)
      req.end()
    } else req.end()
  })

const auth = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }

const rpc = (port: number, body: unknown, headers: Record<string, string> = auth) =>
  http(port, { headers }, typeof body === "string" ? body : JSON.stringify(body))

const call = (port: number, method: string, params?: unknown, id: number | string = 1) =>
  rpc(port, { jsonrpc: "2.0", id, method, ...(params !== undefined ? { params } : {}) })

const errorOf = (response: Response) => {
  const body = response.json as { error?: { code: number; message: string }; id?: unknown }
  assert.isDefined(body.error, response.text)
  return body.error!
}

describe("Api", () => {
  it.live("GET /healthz answers 200 ok without a token", () =>
    withServer(({ port }) =>
      Effect.gen(function* () {
        const res = yield* http(port, { method: "GET", path: "/healthz" })
        assert.strictEqual(res.status, 200)
        assert.strictEqual(res.text, "ok")
      })
    )
  )

  it.live("a missing token is 401 and the operation is not called", () =>
    withServer(({ port, calls }) =>
      Effect.gen(function* () {
        const res = yield* rpc(
          port,
          { jsonrpc: "2.0", id: 1, method: "package.install", params: { id: "bitcoin" } },
          {}
        )
        assert.strictEqual(res.status, 401)
        assert.deepStrictEqual(errorOf(res), { code: -32001, message: "missing or invalid bearer token" })
        assert.deepStrictEqual(calls, [])
      })
    )
  )

  it.live("a wrong token is 401, whatever its length or scheme", () =>
    withServer(({ port, calls }) =>
      Effect.gen(function* () {
        const body = { jsonrpc: "2.0", id: 1, method: "package.install", params: { id: "bitcoin" } }
        for (const header of [
          `Bearer ${token.slice(0, -1)}x`,
          "Bearer short",
          `Bearer ${token}${token}`,
          `Basic ${token}`,
          token,
          "Bearer "
        ]) {
          const res = yield* rpc(port, body, { Authorization: header })
          assert.strictEqual(res.status, 401, header)
          assert.strictEqual(errorOf(res).code, -32001)
        }
        assert.deepStrictEqual(calls, [])
      })
    )
  )

  it.live("a good token gets the result, with the request's id", () =>
    withServer(({ port, calls }) =>
      Effect.gen(function* () {
        const list = yield* call(port, "package.list", undefined, "a")
        assert.strictEqual(list.status, 200)
        const body = list.json as { jsonrpc: string; id: unknown; result: Array<{ id: string }> }
        assert.strictEqual(body.jsonrpc, "2.0")
        assert.strictEqual(body.id, "a")
        assert.strictEqual(body.result[0]?.id, "bitcoin")

        const install = yield* call(port, "package.install", { id: "bitcoin" }, 7)
        assert.deepStrictEqual(install.json, { jsonrpc: "2.0", id: 7, result: [action] })

        yield* call(port, "package.status")
        yield* call(port, "package.status", { id: "lnd" })
        yield* call(port, "system.plan", {})
        yield* call(port, "system.reconcile", [])
        const health = yield* http(
          port,
          { path: "/", headers: auth },
          '{"jsonrpc":"2.0","id":2,"method":"system.health"}'
        )
        assert.deepStrictEqual((health.json as { result: unknown }).result, {
          podman: "reachable",
          catalogIssues: 0,
          uptimeSeconds: 12
        })
        assert.deepStrictEqual(calls, [
          "list()",
          "install(bitcoin)",
          "status()",
          "status(lnd)",
          "plan()",
          "reconcile()",
          "health()"
        ])
      })
    )
  )

  it.live("malformed JSON is -32700", () =>
    withServer(({ port }) =>
      Effect.gen(function* () {
        const res = yield* rpc(port, '{"jsonrpc": "2.0", "method": ')
        assert.strictEqual(res.status, 200)
        assert.strictEqual(errorOf(res).code, -32700)
        assert.strictEqual((res.json as { id: unknown }).id, null)
        assert.strictEqual(errorOf(yield* rpc(port, "")).code, -32700)
      })
    )
  )

  it.live("what is not a JSON-RPC 2.0 request object is -32600, batches included", () =>
    withServer(({ port, calls }) =>
      Effect.gen(function* () {
        for (const body of [
          {},
          "null",
          "42",
          '"package.list"',
          { jsonrpc: "1.0", id: 1, method: "package.list" },
          { jsonrpc: "2.0", id: 1, method: 5 },
          { jsonrpc: "2.0", id: { a: 1 }, method: "package.list" },
          { jsonrpc: "2.0", id: 1, method: "package.list", params: "x" },
          { jsonrpc: "2.0", id: 1, method: "package.list", params: null }
        ]) {
          const res = yield* rpc(port, body)
          assert.strictEqual(errorOf(res).code, -32600, JSON.stringify(body))
        }
        const batch = yield* rpc(port, [{ jsonrpc: "2.0", id: 1, method: "package.list" }])
        assert.strictEqual(errorOf(batch).code, -32600)
        assert.match(errorOf(batch).message, /batch/)
        assert.deepStrictEqual(calls, [])
      })
    )
  )

  it.live("an unknown method is -32601 naming it", () =>
    withServer(({ port }) =>
      Effect.gen(function* () {
        for (const method of ["package.frobnicate", "__proto__", "toString", "constructor"]) {
          const error = errorOf(yield* call(port, method))
          assert.strictEqual(error.code, -32601)
          assert.include(error.message, method)
        }
      })
    )
  )

  it.live("wrong params are -32602 saying what was expected, and the operation is not called", () =>
    withServer(({ port, calls }) =>
      Effect.gen(function* () {
        for (const params of [
          {},
          { id: 5 },
          { id: "Bitcoin" },
          { id: "../etc" },
          { id: "bitcoin", x: 1 },
          ["bitcoin"]
        ]) {
          const error = errorOf(yield* call(port, "package.install", params))
          assert.strictEqual(error.code, -32602, JSON.stringify(params))
          assert.include(error.message, '{"id": <app id>}')
        }
        assert.strictEqual(errorOf(yield* call(port, "package.install")).code, -32602)
        assert.strictEqual(errorOf(yield* call(port, "package.status", { id: 1 })).code, -32602)
        const plan = errorOf(yield* call(port, "system.plan", { id: "bitcoin" }))
        assert.strictEqual(plan.code, -32602)
        assert.include(plan.message, "no params")
        assert.deepStrictEqual(calls, [])
      })
    )
  )

  it.live("an OperationError is answered with its own code and message", () =>
    withServer(({ port }) =>
      Effect.gen(function* () {
        const res = yield* call(port, "package.uninstall", { id: "foo" }, 3)
        assert.strictEqual(res.status, 200)
        assert.deepStrictEqual(res.json, {
          jsonrpc: "2.0",
          id: 3,
          error: { code: -32602, message: "no app foo" }
        })
      })
    )
  )

  it.live("a defect is -32603 without details, and the server keeps answering", () =>
    withServer(({ port }) =>
      Effect.gen(function* () {
        const res = yield* call(port, "package.restart", { id: "boom" })
        assert.strictEqual(res.status, 200)
        assert.strictEqual(errorOf(res).code, -32603)
        assert.notInclude(res.text, secretInDefect)
        assert.notInclude(res.text, "Api.ts")
        const next = yield* call(port, "package.list")
        assert.isArray((next.json as { result: unknown }).result)
      })
    )
  )

  it.live("a method that does not finish in time is -32603", () =>
    withServer(
      ({ port }) =>
        Effect.gen(function* () {
          const error = errorOf(yield* call(port, "package.stop", { id: "stuck" }))
          assert.strictEqual(error.code, -32603)
          assert.include(error.message, "did not finish")
        }),
      { methodTimeoutMs: 100 }
    )
  )

  it.live("a notification runs and gets 204 with no body", () =>
    withServer(({ port, calls }) =>
      Effect.gen(function* () {
        const res = yield* rpc(port, { jsonrpc: "2.0", method: "package.start", params: { id: "bitcoin" } })
        assert.strictEqual(res.status, 204)
        assert.strictEqual(res.text, "")
        assert.deepStrictEqual(calls, ["start(bitcoin)"])
        const unknown = yield* rpc(port, { jsonrpc: "2.0", method: "nope" })
        assert.strictEqual(unknown.status, 204)
      })
    )
  )

  it.live("a body over 1 MiB is refused, with or without a Content-Length", () =>
    withServer(({ port, calls }) =>
      Effect.gen(function* () {
        const padding = "x".repeat(2 * maxBodyBytes)
        const big = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "package.list", params: { padding } })
        const declared = yield* rpc(port, big)
        assert.strictEqual(declared.status, 413)
        assert.strictEqual(errorOf(declared).code, -32600)

        const chunk = "x".repeat(64 * 1024)
        const chunked = yield* http(port, { headers: { ...auth, "Transfer-Encoding": "chunked" } }, [
          '{"jsonrpc":"2.0","id":1,"method":"package.list","params":{"padding":"',
          ...Array.from({ length: 32 }, () => chunk),
          '"}}'
        ])
        assert.strictEqual(chunked.status, 413)
        assert.deepStrictEqual(calls, [])

        const unauthenticated = yield* rpc(port, big, {})
        assert.strictEqual(unauthenticated.status, 401)

        const next = yield* call(port, "package.list")
        assert.strictEqual(next.status, 200)
      })
    )
  )

  it.live("garbage on the wire, hang-ups and other paths do not crash the server", () =>
    withServer(({ port }) =>
      Effect.gen(function* () {
        const raw = (text: string) =>
          Effect.callback<string>((resume) => {
            const socket = connect(port, "127.0.0.1", () => socket.end(text))
            const chunks: Array<Buffer> = []
            socket.on("data", (c: Buffer) => chunks.push(c))
            socket.on("close", () => resume(Effect.succeed(Buffer.concat(chunks).toString("utf8"))))
            socket.on("error", () => {})
          })
        assert.match(yield* raw("GARBAGE\r\n\r\n"), /^HTTP\/1\.1 400/)
        assert.match(yield* raw("\u0000\u0001\u0002\r\n\r\n"), /^HTTP\/1\.1 400/)
        // Hang up halfway through a declared body.
        yield* raw(
          `POST /rpc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 100\r\n\r\n{"json`
        )

        assert.strictEqual((yield* http(port, { method: "GET", path: "/rpc", headers: auth })).status, 405)
        assert.strictEqual((yield* http(port, { path: "/nowhere", headers: auth }, "{}")).status, 404)
        assert.strictEqual((yield* call(port, "package.list")).status, 200)
      })
    )
  )

  it.live("closing the scope stops the server", () =>
    Effect.gen(function* () {
      const port = yield* withServer(({ port }) => Effect.succeed(port))
      const refused = yield* Effect.flip(http(port, { method: "GET", path: "/healthz" }))
      assert.match(refused.message, /ECONNREFUSED/)
    })
  )

  it.live("refuses to start with an empty token", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.scoped(serve({ port: 0, token: Redacted.make("") })).pipe(Effect.provide(fakeOperations([])))
      )
      assert.strictEqual(error._tag, "ServeError")
    })
  )
})

const withSecretsDir = <A, E>(f: (secrets: string) => Effect.Effect<A, E, SecretStore>) =>
  Effect.gen(function* () {
    const dir = mkdtempSync(join(tmpdir(), "archy-api-"))
    const secrets = join(dir, "secrets")
    return yield* f(secrets).pipe(
      Effect.provide(SecretStore.layer(secrets).pipe(Layer.provide(NodeServices.layer))),
      Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    )
  })

describe("ensureToken", () => {
  it.effect("creates the api-token once, 0600 in a 0700 directory, and reads it back", () =>
    withSecretsDir((secrets) =>
      Effect.gen(function* () {
        const first = yield* ensureToken
        const second = yield* ensureToken
        assert.strictEqual(Redacted.value(first), Redacted.value(second))
        assert.isAtLeast(Redacted.value(first).length, 32)
        assert.strictEqual(String(first), "<redacted>")
        assert.strictEqual(statSync(join(secrets, "api-token")).mode & 0o777, 0o600)
        assert.strictEqual(statSync(secrets).mode & 0o777, 0o700)
        assert.strictEqual(readFileSync(join(secrets, "api-token"), "utf8").trim(), Redacted.value(first))
      })
    )
  )
})
