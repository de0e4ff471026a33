/**
 * The daemon's API: JSON-RPC 2.0 over HTTP, on 127.0.0.1 by default. This module only speaks the
 * protocol (bearer-token auth, framing, limits, error mapping) and calls `Operations`.
 *
 * - `POST /rpc` (or `POST /`) with `Authorization: Bearer <token>`; one request object per HTTP
 *   request (batches are refused). Every JSON-RPC answer is HTTP 200, except a missing or wrong
 *   token (401) and a body over 1 MiB (413); a notification (no `id`) runs and gets 204.
 * - `GET /healthz` needs no token and answers 200 `ok` while the server is up.
 *
 * Errors: -32700 parse error, -32600 invalid request, -32601 method not found, -32602 invalid
 * params, -32001 missing or invalid bearer token, an `OperationError`'s own code and message,
 * and -32603 for anything else (a short message; the cause goes to the daemon's log only).
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { SecretError, SecretStore } from "@archy/engine/SecretStore"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { OperationError, Operations } from "./Operations.ts"

/** JSON-RPC error codes this API answers with (an `OperationError` brings its own). */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  Unauthorized: -32001
} as const

/** Largest request body accepted, in bytes. */
export const maxBodyBytes = 1024 * 1024
/** How long one method may run before its caller gets -32603 (installs pull images). */
export const defaultMethodTimeoutMs = 10 * 60 * 1000
/** The name of the token's secret: `<secretsDir>/api-token`. */
export const tokenSecretName = "api-token"

/** Bytes of a refused body we read and discard (so the client sees our answer) before hanging up. */
const drainLimitBytes = 4 * maxBodyBytes

export class ServeError extends Data.TaggedError("ServeError")<{
  readonly host: string
  readonly port: number
  readonly reason: string
}> {
  override get message(): string {
    return `API server on ${this.host}:${this.port}: ${this.reason}`
  }
}

export interface ServeOptions {
  /** Defaults to 127.0.0.1. */
  readonly host?: string
  /** 0 picks a free port. */
  readonly port: number
  readonly token: Redacted.Redacted<string>
  /** Defaults to `defaultMethodTimeoutMs`. */
  readonly methodTimeoutMs?: number
}

// --- methods -------------------------------------------------------------------------------------

const AppId = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9-]{0,62}$/, { expected: "a lowercase app id" })
)
const NoParams = Schema.Record(Schema.String, Schema.Never)
const IdParams = Schema.Struct({ id: AppId })
const OptionalIdParams = Schema.Struct({ id: Schema.optionalKey(AppId) })
const UpdateParams = Schema.Struct({
  id: AppId,
  image: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(512))),
  container: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(128)))
})
const ConfigureParams = Schema.Struct({
  id: AppId,
  settings: Schema.Record(
    Schema.String,
    Schema.Union([Schema.String, Schema.Number, Schema.Boolean, Schema.Null])
  )
})

class InvalidParams extends Data.TaggedError("InvalidParams")<{ readonly message: string }> {}

interface Method {
  readonly call: (
    ops: Operations["Service"],
    params: unknown
  ) => Effect.Effect<unknown, InvalidParams | OperationError>
}

const method = <S extends Schema.Decoder<unknown>>(
  name: string,
  schema: S,
  expected: string,
  run: (ops: Operations["Service"], params: S["Type"]) => Effect.Effect<unknown, OperationError>
): readonly [string, Method] => {
  const decode = Schema.decodeUnknownExit(schema, { onExcessProperty: "error" })
  return [
    name,
    {
      call: (ops, params) => {
        // Absent params and an empty positional list both mean "no params".
        const given = params === undefined || (Array.isArray(params) && params.length === 0) ? {} : params
        const decoded = decode(given)
        if (Exit.isSuccess(decoded)) return run(ops, decoded.value)
        const problem = Option.match(Cause.findErrorOption(decoded.cause), {
          onNone: () => "",
          onSome: (e) => `: ${e.message.replace(/\s*\n\s*/g, " ")}`
        })
        return Effect.fail(new InvalidParams({ message: `${name} expects ${expected}${problem}` }))
      }
    }
  ]
}

const methods: ReadonlyMap<string, Method> = new Map([
  method("package.list", NoParams, "no params", (ops) => ops.list),
  method("package.status", OptionalIdParams, 'no params or {"id": <app id>}', (ops, p) => ops.status(p.id)),
  method("package.install", IdParams, '{"id": <app id>}', (ops, p) => ops.install(p.id)),
  method("package.uninstall", IdParams, '{"id": <app id>}', (ops, p) => ops.uninstall(p.id)),
  method("package.start", IdParams, '{"id": <app id>}', (ops, p) => ops.start(p.id)),
  method("package.stop", IdParams, '{"id": <app id>}', (ops, p) => ops.stop(p.id)),
  method("package.restart", IdParams, '{"id": <app id>}', (ops, p) => ops.restart(p.id)),
  method(
    "package.update",
    UpdateParams,
    '{"id": <app id>, "image"?: <image reference>, "container"?: <container name>}',
    (ops, p) => ops.update(p)
  ),
  method("package.rollback", IdParams, '{"id": <app id>}', (ops, p) => ops.rollback(p.id)),
  method(
    "package.configure",
    ConfigureParams,
    '{"id": <app id>, "settings": {<setting>: <value or null to reset>}}',
    (ops, p) => ops.configure(p.id, p.settings)
  ),
  method("system.plan", NoParams, "no params", (ops) => ops.plan),
  method("system.reconcile", NoParams, "no params", (ops) => ops.reconcile),
  method("system.health", NoParams, "no params", (ops) => ops.health),
  method("update.check", NoParams, "no params", (ops) => ops.updateCheck),
  method("update.apply", NoParams, "no params", (ops) => ops.updateApply),
  method("update.status", NoParams, "no params", (ops) => ops.updateStatus),
  method("update.rollback", NoParams, "no params", (ops) => ops.updateRollback)
])

/** The JSON-RPC methods the API serves. */
export const methodNames: ReadonlyArray<string> = [...methods.keys()]

// --- protocol ------------------------------------------------------------------------------------

type RpcId = string | number | null

interface RpcError {
  readonly code: number
  readonly message: string
}

/** What to send back: a JSON body with an HTTP status, or nothing (a notification). */
type Reply = { readonly status: number; readonly body: string } | { readonly status: 204 }

const errorBody = (id: RpcId, error: RpcError) => JSON.stringify({ jsonrpc: "2.0", id, error })
const errorReply = (id: RpcId, code: number, message: string): Reply => ({
  status: 200,
  body: errorBody(id, { code, message })
})

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)
const isId = (u: unknown): u is RpcId =>
  typeof u === "string" || u === null || (typeof u === "number" && Number.isFinite(u))

const operationReply = (id: RpcId, e: OperationError): Reply =>
  Number.isSafeInteger(e.code) && typeof e.message === "string"
    ? errorReply(id, e.code, e.message)
    : errorReply(id, ErrorCode.InternalError, "internal error")

/** Answers one request body. Never fails; defects in operations become -32603. */
const answer = (text: string, timeoutMs: number): Effect.Effect<Reply, never, Operations> =>
  Effect.gen(function* () {
    let request: unknown
    try {
      request = JSON.parse(text)
    } catch {
      return errorReply(null, ErrorCode.ParseError, "Parse error: the body is not valid JSON")
    }
    if (Array.isArray(request))
      return errorReply(null, ErrorCode.InvalidRequest, "Invalid Request: batch requests are not supported")
    if (!isRecord(request))
      return errorReply(
        null,
        ErrorCode.InvalidRequest,
        "Invalid Request: expected a JSON-RPC 2.0 request object"
      )
    const id = isId(request.id) ? request.id : null
    const isNotification = !("id" in request)
    if (
      request.jsonrpc !== "2.0" ||
      typeof request.method !== "string" ||
      ("id" in request && !isId(request.id)) ||
      ("params" in request && (typeof request.params !== "object" || request.params === null))
    )
      return errorReply(
        id,
        ErrorCode.InvalidRequest,
        'Invalid Request: expected {"jsonrpc": "2.0", "method": string, "params"?: object, "id"?: string | number | null}'
      )
    const name = request.method
    const entry = methods.get(name)
    const reply: Reply =
      entry === undefined
        ? errorReply(id, ErrorCode.MethodNotFound, `Method not found: ${name.slice(0, 100)}`)
        : yield* Effect.gen(function* () {
            const ops = yield* Operations
            return yield* entry.call(ops, request.params ?? undefined).pipe(
              Effect.timeout(timeoutMs),
              Effect.map((result): Reply => {
                const body = JSON.stringify({ jsonrpc: "2.0", id, result: result ?? null })
                return { status: 200, body }
              }),
              Effect.catchCause((cause) => failureReply(id, name, cause, timeoutMs))
            )
          })
    return isNotification ? { status: 204 } : reply
  })

const failureReply = (
  id: RpcId,
  name: string,
  cause: Cause.Cause<InvalidParams | OperationError | Cause.TimeoutError>,
  timeoutMs: number
): Effect.Effect<Reply> => {
  const error = Cause.findErrorOption(cause)
  if (Option.isSome(error)) {
    const e = error.value
    if (e instanceof InvalidParams) return Effect.succeed(errorReply(id, ErrorCode.InvalidParams, e.message))
    if (e instanceof OperationError) return Effect.succeed(operationReply(id, e))
    if (Cause.isTimeoutError(e))
      return Effect.logError(`${name} did not finish within ${timeoutMs} ms; interrupted`).pipe(
        Effect.as(
          errorReply(
            id,
            ErrorCode.InternalError,
            `${name} did not finish within ${Math.round(timeoutMs / 1000)} s`
          )
        )
      )
  }
  return Effect.logError(`${name} failed`, cause).pipe(
    Effect.as(errorReply(id, ErrorCode.InternalError, `internal error in ${name}; see the daemon log`))
  )
}

// --- HTTP ----------------------------------------------------------------------------------------

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest()

/** Constant-time: both sides are hashed to 32 bytes first, so even the length does not leak. */
const authorized = (header: string | undefined, expected: Buffer): boolean => {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "")
  const given = digest(match?.[1] ?? "")
  return timingSafeEqual(given, expected) && match !== null
}

const send = (
  res: ServerResponse,
  status: number,
  body: string,
  contentType = "application/json",
  headers: Record<string, string> = {}
) => {
  if (res.headersSent || res.destroyed) return
  res.writeHead(status, {
    "Content-Type": contentType,
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-store",
    ...headers
  })
  res.end(body)
}

/**
 * Answers before the body was read, then reads and discards what the client still sends (so it
 * gets to see the answer) up to a bound, past which the connection is dropped.
 */
const refuse = (req: IncomingMessage, res: ServerResponse, status: number, body: string, headers = {}) => {
  send(res, status, body, "application/json", headers)
  if (req.complete) return
  let drained = 0
  req.removeAllListeners("data")
  req.on("data", (chunk: Buffer) => {
    drained += chunk.length
    if (drained > drainLimitBytes) req.destroy()
  })
  req.resume()
}

const tooLarge = errorBody(null, {
  code: ErrorCode.InvalidRequest,
  message: `Invalid Request: the body exceeds ${maxBodyBytes} bytes`
})

/**
 * Serves the API until the scope closes; then stops listening, drops open connections and
 * interrupts methods still running.
 */
export const serve = Effect.fn("Api.serve")(function* (options: ServeOptions) {
  const host = options.host ?? "127.0.0.1"
  const timeoutMs = options.methodTimeoutMs ?? defaultMethodTimeoutMs
  if (Redacted.value(options.token).length === 0)
    return yield* new ServeError({ host, port: options.port, reason: "the API token is empty" })
  const expected = digest(Redacted.value(options.token))
  const run = yield* FiberSet.makeRuntime<Operations>()

  const rpc = (req: IncomingMessage, res: ServerResponse) => {
    if (!authorized(req.headers.authorization, expected))
      return refuse(
        req,
        res,
        401,
        errorBody(null, { code: ErrorCode.Unauthorized, message: "missing or invalid bearer token" }),
        { "WWW-Authenticate": "Bearer" }
      )
    const declared = Number(req.headers["content-length"] ?? 0)
    if (declared > maxBodyBytes) return refuse(req, res, 413, tooLarge)
    const chunks: Array<Buffer> = []
    let size = 0
    let refused = false
    req.on("data", (chunk: Buffer) => {
      if (refused) return
      size += chunk.length
      if (size > maxBodyBytes) {
        refused = true
        chunks.length = 0
        return refuse(req, res, 413, tooLarge)
      }
      chunks.push(chunk)
    })
    req.on("end", () => {
      if (refused) return
      run(
        answer(Buffer.concat(chunks).toString("utf8"), timeoutMs).pipe(
          Effect.flatMap((reply) =>
            Effect.sync(() => {
              if (!("body" in reply)) {
                if (!res.headersSent && !res.destroyed) res.writeHead(204).end()
              } else send(res, reply.status, reply.body)
            })
          ),
          Effect.catchCause((cause) =>
            Effect.logError("API request failed", cause).pipe(
              Effect.andThen(
                Effect.sync(() =>
                  send(
                    res,
                    500,
                    errorBody(null, { code: ErrorCode.InternalError, message: "internal error" })
                  )
                )
              )
            )
          )
        )
      )
    })
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    // A stream error (a client hanging up mid-body) must not become an uncaught exception.
    req.on("error", () => {})
    res.on("error", () => {})
    try {
      const path = (req.url ?? "/").split("?")[0]
      if (path === "/healthz") {
        if (req.method === "GET" || req.method === "HEAD") return send(res, 200, "ok", "text/plain")
        return refuse(
          req,
          res,
          405,
          errorBody(null, { code: ErrorCode.InvalidRequest, message: "Invalid Request: use GET" }),
          { Allow: "GET, HEAD" }
        )
      }
      if (path === "/rpc" || path === "/") {
        if (req.method !== "POST")
          return refuse(
            req,
            res,
            405,
            errorBody(null, { code: ErrorCode.InvalidRequest, message: "Invalid Request: use POST" }),
            { Allow: "POST" }
          )
        return rpc(req, res)
      }
      return refuse(req, res, 404, errorBody(null, { code: ErrorCode.InvalidRequest, message: "not found" }))
    } catch {
      if (!res.headersSent)
        send(res, 500, errorBody(null, { code: ErrorCode.InternalError, message: "internal error" }))
      else res.destroy()
    }
  }

  const server = yield* Effect.acquireRelease(
    Effect.callback<Server, ServeError>((resume) => {
      const server = createServer({ requestTimeout: 60_000, headersTimeout: 10_000 }, onRequest)
      server.maxConnections = 128
      const onError = (e: Error) => {
        server.off("listening", onListening)
        resume(Effect.fail(new ServeError({ host, port: options.port, reason: e.message })))
      }
      const onListening = () => {
        server.off("error", onError)
        resume(Effect.succeed(server))
      }
      server.once("error", onError)
      server.once("listening", onListening)
      server.listen({ host, port: options.port, exclusive: true })
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  )
  server.on("error", () => {})
  const port = (server.address() as AddressInfo).port
  yield* Effect.logDebug(`API listening on ${host}:${port}`)
  return { port }
}) satisfies (
  options: ServeOptions
) => Effect.Effect<{ readonly port: number }, ServeError, Operations | Scope.Scope>

/**
 * The API token: generated once (0600, in the SecretStore's 0700 directory) on first start,
 * then read back on every start.
 */
export const ensureToken: Effect.Effect<Redacted.Redacted<string>, SecretError, SecretStore> = Effect.gen(
  function* () {
    const store = yield* SecretStore
    yield* store.ensure(tokenSecretName)
    const token = (yield* store.read([tokenSecretName])).get(tokenSecretName)
    if (token === undefined)
      return yield* new SecretError({ file: `${store.dir}/${tokenSecretName}`, reason: "was not created" })
    return token
  }
)
