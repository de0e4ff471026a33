/**
 * The verifier's HTTP probes: one GET with a timeout, answering with the status code or the
 * error. HTTPS to a loopback address accepts the node's self-signed certificate (nginx on the
 * node serves one); anything else is verified as usual.
 */
import * as http from "node:http"
import * as https from "node:https"
import * as Effect from "effect/Effect"

export interface ProbeAnswer {
  readonly status?: number
  readonly body?: string
  readonly error?: string
}

const loopback = new Set(["127.0.0.1", "localhost", "[::1]", "::1"])

/** GET `url`; never fails: a refused connection, a TLS error or a timeout become `error`. */
export const get = (url: string, timeoutMs: number): Effect.Effect<ProbeAnswer> =>
  Effect.callback<ProbeAnswer>((resume) => {
    let target: URL
    try {
      target = new URL(url)
    } catch {
      resume(Effect.succeed({ error: `not a URL: ${url}` }))
      return
    }
    const secure = target.protocol === "https:"
    const client = secure ? https : http
    const req = client.request(
      target,
      {
        method: "GET",
        agent: false,
        timeout: timeoutMs,
        ...(secure ? { rejectUnauthorized: !loopback.has(target.hostname) } : {})
      },
      (res) => {
        const chunks: Array<Buffer> = []
        let size = 0
        res.on("data", (c: Buffer) => {
          size += c.length
          if (size <= 4096) chunks.push(c)
        })
        res.on("error", (e) => resume(Effect.succeed({ status: res.statusCode ?? 0, error: e.message })))
        res.on("end", () =>
          resume(
            Effect.succeed({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString("utf8").slice(0, 4096)
            })
          )
        )
      }
    )
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on("error", (e) => resume(Effect.succeed({ error: e.message })))
    req.end()
    return Effect.sync(() => req.destroy())
  })
