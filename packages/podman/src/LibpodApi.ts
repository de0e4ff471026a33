/**
 * A small client for podman's libpod REST API over its unix socket (node:http). Every request has
 * a deadline (a followed stream: only for its answer to begin), is aborted when interrupted, and
 * fails with the port's typed `RuntimeError`:
 * connection problems are `PodmanUnreachable`, a missed deadline is `RuntimeTimeout`, a body that
 * does not fit its Schema is `UnexpectedOutput`, and HTTP errors are classified from podman's
 * `{cause, message, response}` answer (a name conflict is a 500, not a 409).
 */
import * as http from "node:http"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import {
  ImageMissing,
  NameInUse,
  NoSuchContainer,
  PodmanUnreachable,
  RuntimeError,
  RuntimeTimeout,
  UnexpectedOutput
} from "./PodmanRuntime.ts"

/** Every path is under this prefix: the v4 API, which podman 4.x and 5.x both serve. */
export const apiPrefix = "/v4.0.0/libpod"

export const defaultTimeoutMs = 30_000

export interface Request {
  /** What is being done, for errors: `start container lnd`. */
  readonly operation: string
  readonly method: "GET" | "POST" | "DELETE"
  /** Path after the API prefix, with its query: `/containers/json?all=true`. */
  readonly path: string
  /** Sent as JSON. */
  readonly body?: unknown
  readonly timeoutMs?: number
  /** The container the request is about: a 404 or a name conflict names it. */
  readonly container?: string
  /** The image the request is about: "image not known" names it. */
  readonly image?: string
  /** Statuses besides 2xx that count as success (304 already started, 404 already gone). */
  readonly accept?: ReadonlyArray<number>
}

export interface Response {
  readonly status: number
  readonly body: string
}

export interface LibpodApi {
  readonly socketPath: string
  /** How many HTTP requests were sent so far. */
  readonly requests: Effect.Effect<number>
  /** Any status; fails only when no answer arrives. */
  readonly send: (request: Request) => Effect.Effect<Response, RuntimeError>
  /** Fails on a status that is neither 2xx nor accepted, classified. */
  readonly call: (request: Request) => Effect.Effect<Response, RuntimeError>
  /** `call`, then the body decoded as JSON with `schema`. */
  readonly json: <S extends Schema.Top & { readonly DecodingServices: never }>(
    request: Request,
    schema: S
  ) => Effect.Effect<S["Type"], RuntimeError>
  /**
   * `call` for streaming answers (one JSON object per line): each non-empty line of a successful
   * answer goes to `onLine` as it arrives; the answer's body is returned too.
   */
  readonly stream: (
    request: Request,
    onLine: (line: string) => Effect.Effect<void>
  ) => Effect.Effect<Response, RuntimeError>
  /**
   * Follows an answer that does not end by itself (`/events?stream=true`): its non-empty lines,
   * as they arrive, until podman ends the answer. The deadline covers only the answer's start;
   * ending the stream (interruption) aborts the request. One request per run of the stream.
   */
  readonly lines: (request: Request) => Stream.Stream<string, RuntimeError>
}

const fail = (reason: RuntimeError["reason"]) => new RuntimeError({ reason })

const short = (text: string, max = 300): string => {
  const t = text.trim().replace(/\s+/g, " ")
  return t.length > max ? `${t.slice(0, max)}…` : t
}

const ErrorBody = Schema.Struct({
  cause: Schema.optionalKey(Schema.NullOr(Schema.String)),
  message: Schema.optionalKey(Schema.NullOr(Schema.String))
})
const decodeErrorBody = Schema.decodeUnknownOption(Schema.fromJsonString(ErrorBody))

/** podman's message for a failed request, or the raw body when it is not podman's error shape. */
export const errorMessage = (body: string): string => {
  const parsed = decodeErrorBody(body)
  if (parsed._tag === "Some") {
    const m = parsed.value.message ?? parsed.value.cause
    if (m !== undefined && m !== null && m.length > 0) return m
  }
  return short(body) || "(empty body)"
}

/** Turns an HTTP error answer into the port's error. */
export const classify = (request: Request, response: Response): RuntimeError => {
  const message = errorMessage(response.body)
  const text = `${response.body}\n${message}`.toLowerCase()
  // "bind: address already in use" is a host port another process holds, not a name conflict.
  if (text.includes("already in use") && !text.includes("address already in use")) {
    return fail(new NameInUse({ container: request.container ?? short(message, 120) }))
  }
  if (text.includes("image not known") || text.includes("no such image")) {
    return fail(new ImageMissing({ image: request.image ?? "unknown", detail: short(message) }))
  }
  if (response.status === 404 && (request.container !== undefined || text.includes("no such container"))) {
    return fail(new NoSuchContainer({ container: request.container ?? short(message, 120) }))
  }
  if (response.status === 404 && request.image !== undefined) {
    return fail(new ImageMissing({ image: request.image, detail: short(message) }))
  }
  return fail(
    new UnexpectedOutput({
      operation: request.operation,
      detail: `HTTP ${response.status}: ${short(message)}`
    })
  )
}

const unreachableCodes = new Set(["ECONNREFUSED", "ENOENT", "EACCES", "ENOTSOCK", "ECONNRESET", "EPIPE"])

const requestError = (socketPath: string, request: Request, error: unknown): RuntimeError => {
  const code =
    typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
      ? error.code
      : undefined
  const detail = error instanceof Error ? error.message : String(error)
  return code !== undefined && unreachableCodes.has(code)
    ? fail(new PodmanUnreachable({ endpoint: socketPath, detail: `${request.operation}: ${detail}` }))
    : fail(new UnexpectedOutput({ operation: request.operation, detail: short(detail) }))
}

const isOk = (request: Request, status: number) =>
  (status >= 200 && status < 300) || (request.accept ?? []).includes(status)

interface Exchange {
  /** Lines of a successful answer, synchronously as they arrive (the caller queues them). */
  readonly onLine?: (line: string) => void
  /** Called once the answer's status and headers are in. */
  readonly onHeaders?: (status: number) => void
  /**
   * Whether a successful answer whose lines go to `onLine` is also kept whole for the returned
   * `Response` (default true); an endless answer must not be.
   */
  readonly keepBody?: boolean
}

/** One exchange; interruption destroys the request. */
const exchange = (
  socketPath: string,
  request: Request,
  options: Exchange = {}
): Effect.Effect<Response, RuntimeError> =>
  Effect.callback<Response, RuntimeError>((resume) => {
    const payload = request.body === undefined ? undefined : JSON.stringify(request.body)
    const req = http.request({
      socketPath,
      path: apiPrefix + request.path,
      method: request.method,
      headers: {
        Host: "d",
        Accept: "application/json",
        ...(payload !== undefined
          ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) }
          : {})
      }
    })
    let settled = false
    const settle = (effect: Effect.Effect<Response, RuntimeError>) => {
      if (settled) return
      settled = true
      resume(effect)
    }
    req.on("error", (error) => settle(Effect.fail(requestError(socketPath, request, error))))
    req.on("response", (res) => {
      const status = res.statusCode ?? 0
      options.onHeaders?.(status)
      const lines = options.onLine !== undefined && isOk(request, status) ? options.onLine : undefined
      const keep = lines === undefined || options.keepBody !== false
      const chunks: Array<string> = []
      let partial = ""
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        if (keep) chunks.push(chunk)
        if (lines === undefined) return
        partial += chunk
        let nl = partial.indexOf("\n")
        while (nl >= 0) {
          const line = partial.slice(0, nl).trim()
          partial = partial.slice(nl + 1)
          if (line.length > 0) lines(line)
          nl = partial.indexOf("\n")
        }
      })
      res.on("end", () => {
        if (lines !== undefined && partial.trim().length > 0) lines(partial.trim())
        settle(Effect.succeed({ status, body: chunks.join("") }))
      })
      res.on("error", (error) => settle(Effect.fail(requestError(socketPath, request, error))))
      res.on("close", () => {
        if (!res.complete) {
          settle(Effect.fail(requestError(socketPath, request, new Error("connection closed mid-answer"))))
        }
      })
    })
    req.end(payload)
    return Effect.sync(() => {
      settled = true
      req.destroy()
    })
  })

export const make = (options: { readonly socketPath: string; readonly timeoutMs?: number }): LibpodApi => {
  const { socketPath } = options
  const defaultMs = options.timeoutMs ?? defaultTimeoutMs
  let count = 0

  const withDeadline = <A>(request: Request, effect: Effect.Effect<A, RuntimeError>) => {
    const afterMs = request.timeoutMs ?? defaultMs
    return effect.pipe(
      Effect.timeoutOrElse({
        duration: afterMs,
        orElse: () => Effect.fail(fail(new RuntimeTimeout({ operation: request.operation, afterMs })))
      })
    )
  }

  const send = (request: Request) =>
    Effect.suspend(() => {
      count++
      return withDeadline(request, exchange(socketPath, request))
    })

  const checked = (request: Request) => (response: Response) =>
    isOk(request, response.status) ? Effect.succeed(response) : Effect.fail(classify(request, response))

  const call = (request: Request) => send(request).pipe(Effect.flatMap(checked(request)))

  const json = <S extends Schema.Top & { readonly DecodingServices: never }>(request: Request, schema: S) => {
    const decode = Schema.decodeUnknownEffect(Schema.fromJsonString(schema))
    return call(request).pipe(
      Effect.flatMap((response) =>
        decode(response.body).pipe(
          Effect.mapError((error) =>
            fail(new UnexpectedOutput({ operation: request.operation, detail: short(error.message) }))
          )
        )
      )
    )
  }

  type Item =
    | { readonly _tag: "Line"; readonly line: string }
    | { readonly _tag: "Done"; readonly response: Response }

  const stream = (request: Request, onLine: (line: string) => Effect.Effect<void>) =>
    Effect.suspend(() => {
      count++
      // Lines are queued as they arrive and handed to `onLine` in order; the answer comes last.
      const items = Stream.callback<Item, RuntimeError>((queue) =>
        exchange(socketPath, request, {
          onLine: (line) => {
            Queue.offerUnsafe(queue, { _tag: "Line", line })
          }
        }).pipe(
          Effect.flatMap(checked(request)),
          Effect.flatMap((response) =>
            Effect.sync(() => {
              Queue.offerUnsafe(queue, { _tag: "Done", response })
              Queue.endUnsafe(queue)
            })
          )
        )
      )
      let last: Response | undefined
      return withDeadline(
        request,
        Stream.runForEach(items, (item) =>
          item._tag === "Line"
            ? onLine(item.line)
            : Effect.sync(() => {
                last = item.response
              })
        ).pipe(
          Effect.flatMap(() =>
            last !== undefined
              ? Effect.succeed(last)
              : Effect.fail(
                  fail(
                    new UnexpectedOutput({ operation: request.operation, detail: "the answer ended early" })
                  )
                )
          )
        )
      )
    })

  const lines = (request: Request): Stream.Stream<string, RuntimeError> =>
    Stream.callback<string, RuntimeError>((queue) =>
      Effect.suspend(() => {
        count++
        let started = false
        const follow = exchange(socketPath, request, {
          onLine: (line) => {
            Queue.offerUnsafe(queue, line)
          },
          onHeaders: () => {
            started = true
          },
          keepBody: false
        }).pipe(Effect.flatMap(checked(request)), Effect.andThen(Queue.end(queue)))
        const afterMs = request.timeoutMs ?? defaultMs
        // Fails if the answer has not begun in time; once it has, it never completes.
        const deadline = Effect.sleep(afterMs).pipe(
          Effect.andThen(
            Effect.suspend(() =>
              started
                ? Effect.never
                : Effect.fail(fail(new RuntimeTimeout({ operation: request.operation, afterMs })))
            )
          )
        )
        return Effect.raceFirst(follow, deadline)
      })
    )

  return {
    socketPath,
    requests: Effect.sync(() => count),
    send,
    call,
    json,
    stream,
    lines
  }
}
