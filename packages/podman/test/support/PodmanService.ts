/**
 * Real-podman test support: whether podman is here (under CI its absence fails the suite, elsewhere
 * the suite is skipped with a message), a private `podman system service` on a temporary socket,
 * the CLI for assertions, and cleanup of a test run's containers by name prefix.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as http from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface Cli {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `podman ARGS…` (the local rootful podman, the same store the service uses). */
export const podmanCli = (args: ReadonlyArray<string>, timeoutMs = 60_000): Cli => {
  const r = spawnSync("podman", args, { encoding: "utf8", timeout: timeoutMs })
  if (r.error !== undefined) throw r.error
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** `podmanCli` without blocking the event loop (streams being read meanwhile keep flowing). */
export const podmanAsync = (args: ReadonlyArray<string>, timeoutMs = 60_000): Promise<Cli> =>
  new Promise((resolve, reject) => {
    execFile("podman", [...args], { encoding: "utf8", timeout: timeoutMs }, (error, stdout, stderr) => {
      const status = error === null ? 0 : error.code
      if (typeof status === "number") resolve({ status, stdout, stderr })
      else reject(error)
    })
  })

/** Our own `podman events` processes still running (children of this process). */
export const eventProcesses = (): number => {
  const r = spawnSync("ps", ["-eo", "ppid=,args="], { encoding: "utf8" })
  return r.stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter(
      ([ppid, ...args]) =>
        Number(ppid) === process.pid && args.includes("events") && args[0]?.endsWith("podman")
    ).length
}

const probe = (): string | undefined => {
  const r = spawnSync("podman", ["version", "--format", "{{.Client.Version}}"], {
    encoding: "utf8",
    timeout: 30_000
  })
  if (r.error !== undefined) return `podman cannot run: ${r.error.message}`
  if (r.status !== 0) return `podman version failed: ${r.stderr.trim()}`
  return undefined
}

/**
 * `undefined` when real-podman tests can run, else why not. Under `CI=true` a missing podman
 * throws, so the suite fails instead of silently skipping.
 */
export const podmanMissing: string | undefined = (() => {
  const why = probe()
  if (why !== undefined && process.env.CI === "true") {
    throw new Error(`CI=true but the real-podman tests cannot run: ${why}`)
  }
  if (why !== undefined) console.warn(`skipping real-podman tests: ${why}`)
  return why
})()

/** GET /_ping on the socket: true when podman answers OK. */
export const ping = (socketPath: string, timeoutMs = 2_000): Promise<boolean> =>
  new Promise((resolve) => {
    const req = http.request({ socketPath, path: "/_ping", method: "GET", timeout: timeoutMs }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode === 200))
    })
    req.on("timeout", () => req.destroy())
    req.on("error", () => resolve(false))
    req.end()
  })

export interface PodmanService {
  readonly socketPath: string
  readonly stop: () => Promise<void>
}

/** Starts `podman system service --time=0` on a fresh socket and waits until it answers. */
export const startPodmanService = async (timeoutMs = 30_000): Promise<PodmanService> => {
  const dir = mkdtempSync(join(tmpdir(), "archy-podman-"))
  const socketPath = join(dir, "podman.sock")
  const child: ChildProcess = spawn("podman", ["system", "service", "--time=0", `unix://${socketPath}`], {
    stdio: ["ignore", "ignore", "pipe"]
  })
  let stderr = ""
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-2_000)
  })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM")
      const killer = setTimeout(() => child.kill("SIGKILL"), 5_000)
      await exited
      clearTimeout(killer)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break
    if (await ping(socketPath)) return { socketPath, stop }
    await new Promise((r) => setTimeout(r, 100))
  }
  await stop()
  throw new Error(`podman system service did not answer on ${socketPath}: ${stderr.trim()}`)
}

/** Force-removes (no grace period) every container whose name starts with `prefix`. */
export const cleanup = (prefix: string): void => {
  const list = podmanCli(["ps", "-a", "--format", "{{.Names}}"])
  const names = list.stdout
    .split("\n")
    .map((s) => s.trim())
    .filter((n) => n.startsWith(prefix))
  if (names.length > 0) podmanCli(["rm", "-f", "-t", "0", ...names])
}

/** A prefix unique to this run, for container names: `archy-ct-k3x9q2-`. */
export const runPrefix = (base = "archy-ct"): string => `${base}-${Math.random().toString(36).slice(2, 8)}-`
