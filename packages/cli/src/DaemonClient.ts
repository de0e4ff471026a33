/**
 * Talks to a running archy daemon: JSON-RPC 2.0 over HTTP on 127.0.0.1 with the bearer token from
 * `<stateDir>/secrets/api-token`. `findDaemon` says whether one is up (so a verb can go through
 * it), `call` runs one method and gives its result or a typed error.
 */
import { readFile } from "node:fs/promises"
import { request } from "node:http"
import { join } from "node:path"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

/** Nothing answers on the port, or the connection broke before an answer came. */
export class DaemonUnreachable extends Data.TaggedError("DaemonUnreachable")<{
  readonly port: number
  readonly reason: string
}> {
  override get message(): string {
    return `the archy daemon on 127.0.0.1:${this.port} is unreachable: ${this.reason}`
  }
}

/** The daemon took longer than the caller waits; the operation may still be running there. */
export class DaemonTimeout extends Data.TaggedError("DaemonTimeout")<{
  readonly method: string
  readonly timeoutMs: number
}> {
  override get message(): string {
    return `the archy daemon did not answer ${this.method} within ${Math.round(this.timeoutMs / 1000)} s; it may still be working on it`
  }
}

/**
 * The daemon refused the call: the JSON-RPC error it sent (-32001 bad token, -32601 unknown
 * method, -32602 invalid params or unknown app, -32000 server error, -32603 internal error…),
 * or -32603 when its answer was not JSON-RPC at all.
 */
export class DaemonRpcError extends Data.TaggedError("DaemonRpcError")<{
  readonly code: number
  readonly message: string
}> {}

export interface CallOptions {
  readonly port: number
  readonly token: string | Redacted.Redacted<string>
  /** Defaults to 127.0.0.1. */
  readonly host?: string
  /** Defaults to 11 minutes: the daemon gives a method up to 10 (installs pull images). */
  readonly timeoutMs?: number
}

/** A daemon that answered its health check, with what it takes to call it. */
export interface DaemonConnection {
  readonly port: number
  readonly token: Redacted.Redacted<string>
  readonly host?: string
}

export const defaultCallTimeoutMs = 11 * 60 * 1000
const defaultProbeTimeoutMs = 500
const internalError = -32603

interface HttpAnswer {
  readonly status: number
  readonly text: string
}

/** One HTTP exchange; interrupting it aborts the request. */
const exchange = (options: {
  readonly host: string
  readonly port: number
  readonly method: "GET" | "POST"
  readonly path: string
  readonly headers: Record<string, string>
  readonly body?: string
}) =>
  Effect.callback<HttpAnswer, DaemonUnreachable>((resume) => {
    const req = request(
      {
        host: options.host,
        port: options.port,
        method: options.method,
        path: options.path,
        headers: options.headers,
        agent: false
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("error", (e) =>
          resume(Effect.fail(new DaemonUnreachable({ port: options.port, reason: e.message })))
        )
        res.on("end", () =>
          resume(
            Effect.succeed({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") })
          )
        )
      }
    )
    req.on("error", (e: NodeJS.ErrnoException) =>
      resume(
        Effect.fail(
          new DaemonUnreachable({
            port: options.port,
            reason: e.code === "ECONNREFUSED" ? "nothing listens there" : e.message
          })
        )
      )
    )
    req.end(options.body)
    return Effect.sync(() => req.destroy())
  })

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/** The result of a JSON-RPC answer, or the error it carries. */
const resultOf = (answer: HttpAnswer): Effect.Effect<unknown, DaemonRpcError> => {
  let body: unknown
  try {
    body = JSON.parse(answer.text)
  } catch {
    body = undefined
  }
  if (isRecord(body) && body.jsonrpc === "2.0") {
    if ("result" in body && answer.status === 200) return Effect.succeed(body.result)
    const error = body.error
    if (isRecord(error) && typeof error.code === "number" && typeof error.message === "string")
      return Effect.fail(new DaemonRpcError({ code: error.code, message: error.message }))
  }
  return Effect.fail(
    new DaemonRpcError({
      code: internalError,
      message: `the daemon sent an answer that is not JSON-RPC (HTTP ${answer.status})`
    })
  )
}

let nextId = 1

/** Calls one JSON-RPC method on the daemon and gives its result. */
export const call = (
  method: string,
  params: Record<string, unknown> | undefined,
  options: CallOptions
): Effect.Effect<unknown, DaemonUnreachable | DaemonTimeout | DaemonRpcError> => {
  const timeoutMs = options.timeoutMs ?? defaultCallTimeoutMs
  const token = typeof options.token === "string" ? options.token : Redacted.value(options.token)
  const body = JSON.stringify({
    jsonrpc: "2.0",
    id: nextId++,
    method,
    ...(params !== undefined ? { params } : {})
  })
  return exchange({
    host: options.host ?? "127.0.0.1",
    port: options.port,
    method: "POST",
    path: "/rpc",
    headers: {
      Authorization: `Bearer ${token}`,
      "Content-Type": "application/json",
      "Content-Length": String(Buffer.byteLength(body))
    },
    body
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeoutMs,
      orElse: () => Effect.fail(new DaemonTimeout({ method, timeoutMs }))
    }),
    Effect.flatMap(resultOf)
  )
}

/**
 * The running daemon, if there is one: its token file `<stateDir>/secrets/api-token` is readable
 * and `GET /healthz` on the port answers `ok` within 500 ms. Otherwise undefined (the caller
 * then works on the node directly). Never fails.
 */
export const findDaemon = (
  stateDir: string,
  port: number,
  options: { readonly host?: string; readonly timeoutMs?: number } = {}
): Effect.Effect<DaemonConnection | undefined> =>
  Effect.gen(function* () {
    const text = yield* Effect.tryPromise(() => readFile(join(stateDir, "secrets", "api-token"), "utf8"))
    const token = text.trim()
    if (token.length === 0) return undefined
    const host = options.host ?? "127.0.0.1"
    const health = yield* exchange({ host, port, method: "GET", path: "/healthz", headers: {} }).pipe(
      Effect.timeout(options.timeoutMs ?? defaultProbeTimeoutMs)
    )
    if (health.status !== 200 || health.text.trim() !== "ok") return undefined
    const connection: DaemonConnection = {
      port,
      token: Redacted.make(token),
      ...(options.host !== undefined ? { host: options.host } : {})
    }
    return connection
  }).pipe(Effect.orElseSucceed(() => undefined))
