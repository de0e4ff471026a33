/**
 * Prerequisites of the real-machine suites, and small process helpers. A missing prerequisite
 * fails the suite under `CI=true` and skips it elsewhere, with the reason on stderr.
 */
import { spawn, spawnSync } from "node:child_process"
import { accessSync, constants } from "node:fs"
import { createServer } from "node:net"

/**
 * The first reason in `reasons` (each `undefined` when that prerequisite is met), or `undefined`
 * when all are met. Under `CI=true` a reason throws, so the suite fails instead of skipping.
 */
export const missing = (suite: string, ...reasons: ReadonlyArray<string | undefined>): string | undefined => {
  const why = reasons.find((r) => r !== undefined)
  if (why === undefined) return undefined
  if (process.env.CI === "true") throw new Error(`CI=true but ${suite} cannot run: ${why}`)
  console.warn(`skipping ${suite}: ${why}`)
  return why
}

/** `undefined` when `path` exists and is executable, else why not. */
export const executable = (path: string, hint: string): string | undefined => {
  try {
    accessSync(path, constants.X_OK)
    return undefined
  } catch {
    return `${path} is missing (${hint})`
  }
}

/** `undefined` when `command` is on PATH, else why not. */
export const onPath = (command: string, hint: string): string | undefined => {
  const r = spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" })
  return r.status === 0 ? undefined : `${command} is not on PATH (${hint})`
}

export interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to its end without blocking the event loop; never throws on a non-zero exit. */
export const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv; readonly timeoutMs?: number } = {}
): Promise<Ran> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString("utf8")
    })
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString("utf8")
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000)
    child.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

/** A TCP port on 127.0.0.1 that nothing listened on a moment ago. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no port was assigned"))))
    })
  })

/** A short random suffix for names unique to this run. */
export const uniqueSuffix = (): string =>
  `${Date.now().toString(36).slice(-4)}${Math.random().toString(36).slice(2, 6)}`
