/**
 * A podman of one's own on a shared machine: `podman system service` on a private store
 * (`--root`/`--runroot` in a temporary directory) and a private socket, with the local test images
 * copied in. A daemon or reconcile pass pointed at it removes every container with our labels that
 * its catalog does not name; on the shared store that would be other runs' containers. What stays
 * podman-wide: networks (the CNI configuration), the events log and the 127.0.0.1 ports. So a
 * network this run creates is removed again at the end, and `copyCatalog` moves a catalog's host
 * ports to free ones.
 *
 * Also here: an `archy daemon` process pointed at such a podman (`startDaemon`), with raw HTTP
 * access to its API, for the suites and benchmarks that exercise the daemon from outside.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process"
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync
} from "node:fs"
import * as http from "node:http"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { basename, join } from "node:path"

export interface Cli {
  readonly status: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
}

/** A podman command that failed (a setup or teardown step, not something under test). */
export class PodmanCommandError extends Error {}

const failure = (args: ReadonlyArray<string>, r: Cli): string => {
  const how = r.signal !== null ? `was killed by ${r.signal}` : `exited ${r.status}`
  return `podman ${args.join(" ")} ${how}: ${r.stderr.trim().slice(-500)}`
}

/** Runs `podman ARGS` to its end (blocking); never throws on a non-zero exit. */
export const podman = (args: ReadonlyArray<string>, timeoutMs = 120_000): Cli => {
  const r = spawnSync("podman", args, { encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20 })
  if (r.error !== undefined) throw new PodmanCommandError(`podman ${args.join(" ")}: ${r.error.message}`)
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}

/** `podman` without blocking the event loop; never rejects on a non-zero exit. */
export const podmanAsync = (args: ReadonlyArray<string>, timeoutMs = 120_000): Promise<Cli> =>
  new Promise((resolve, reject) => {
    execFile(
      "podman",
      [...args],
      { encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        if (error === null) return resolve({ status: 0, signal: null, stdout, stderr })
        if (typeof error.code === "number" || error.signal != null)
          return resolve({
            status: typeof error.code === "number" ? error.code : null,
            signal: error.signal ?? null,
            stdout,
            stderr
          })
        reject(new PodmanCommandError(`podman ${args.join(" ")}: ${error.message}`))
      }
    )
  })

/** `podman ARGS`' stdout; throws when it fails. */
export const podmanOk = (args: ReadonlyArray<string>, timeoutMs?: number): string => {
  const r = podman(args, timeoutMs)
  if (r.status !== 0) throw new PodmanCommandError(failure(args, r))
  return r.stdout
}

/** Why a private podman cannot run here (not root, no podman, an image missing), or undefined. */
export const privatePodmanMissing = (images: ReadonlyArray<string>): string | undefined => {
  const r = spawnSync("podman", ["version", "--format", "{{.Client.Version}}"], {
    encoding: "utf8",
    timeout: 30_000
  })
  if (r.error !== undefined) return `podman cannot run: ${r.error.message}`
  if (r.status !== 0) return `podman version failed: ${r.stderr.trim()}`
  if (process.getuid?.() !== 0) return "it needs rootful podman: run it as root"
  for (const image of images) {
    const exists = spawnSync("podman", ["image", "exists", image], { timeout: 30_000 })
    if (exists.status !== 0)
      return `the test image ${image} is missing: run test/fixtures/build-images (root)`
  }
  return undefined
}

/** GET on a unix socket: the status and the body. */
export const socketGet = (
  socketPath: string,
  path: string,
  timeoutMs = 10_000
): Promise<{ readonly status: number; readonly body: string }> =>
  new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        path,
        method: "GET",
        timeout: timeoutMs,
        headers: { Host: "d", Accept: "application/json" }
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") })
        )
        res.on("error", reject)
      }
    )
    req.on("timeout", () => req.destroy(new Error(`GET ${path} timed out`)))
    req.on("error", reject)
    req.end()
  })

/** Whatever is still mounted at or under `dir` (normally nothing), unmounted deepest first. */
export const unmountUnder = (dir: string): void => {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length)
  for (const p of mounts) spawnSync("umount", ["-l", p])
}

export interface PrivatePodman {
  /** The temporary directory holding the store and the socket; removed by `dispose`. */
  readonly dir: string
  /** `--root R --runroot RR`: put before the subcommand of every podman command on this store. */
  readonly store: ReadonlyArray<string>
  readonly socketPath: string
  /** `podman [store] ARGS`, blocking; never throws on a non-zero exit. */
  readonly cli: (args: ReadonlyArray<string>, timeoutMs?: number) => Cli
  /** `podman [store] ARGS` without blocking the event loop. */
  readonly cliAsync: (args: ReadonlyArray<string>, timeoutMs?: number) => Promise<Cli>
  /** `podman [store] ARGS`' stdout; throws when it fails. */
  readonly cliOk: (args: ReadonlyArray<string>, timeoutMs?: number) => string
  /**
   * Writes a storage.conf naming this store and resolves with its path: for podman processes that
   * take no store flags (bin/archy's CLI adapter), given as `CONTAINERS_STORAGE_CONF`.
   */
  readonly storageConf: () => string
  /** Copies images from the shared store into this one (`podman save`, then `load`). */
  readonly copyImages: (images: ReadonlyArray<string>) => void
  /** Remembers to remove `name` at the end if it does not exist now (podman networks are shared). */
  readonly watchNetwork: (name: string) => void
  /** Starts the service on `socketPath` and resolves once it answers `/_ping`. */
  readonly startService: (timeoutMs?: number) => Promise<void>
  /** Stops the service (SIGTERM, then SIGKILL after 5 s); the store stays. */
  readonly stopService: () => Promise<void>
  /**
   * Undoes everything: every container in the store, the service, a watched network this run
   * created (unless something still uses it), leftover mounts, the directory. Each step runs even
   * when one before failed; resolves with what could not be undone.
   */
  readonly dispose: () => Promise<ReadonlyArray<string>>
}

/**
 * A private store in a new temporary directory (under `parent`, default the system's). podman
 * refuses a runroot longer than 50 characters: keep `parent` and `prefix` short.
 */
export const makePrivatePodman = (
  options: { readonly parent?: string; readonly prefix?: string } = {}
): PrivatePodman => {
  const dir = mkdtempSync(join(options.parent ?? tmpdir(), options.prefix ?? "archy-podman-"))
  const runroot = join(dir, "store/run")
  if (runroot.length > 50) {
    rmSync(dir, { recursive: true, force: true })
    throw new PodmanCommandError(`podman refuses a runroot longer than 50 characters: ${runroot}`)
  }
  const store = ["--root", join(dir, "store/root"), "--runroot", runroot]
  const socketPath = join(dir, "podman.sock")
  const networks: Array<string> = []
  let used = false
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()

  const cli = (args: ReadonlyArray<string>, timeoutMs?: number) => {
    used = true
    return podman([...store, ...args], timeoutMs)
  }
  const cliAsync = (args: ReadonlyArray<string>, timeoutMs?: number) => {
    used = true
    return podmanAsync([...store, ...args], timeoutMs)
  }
  const cliOk = (args: ReadonlyArray<string>, timeoutMs?: number) => {
    used = true
    return podmanOk([...store, ...args], timeoutMs)
  }

  const storageConf = () => {
    const driver = cliOk(["info", "--format", "{{.Store.GraphDriverName}}"]).trim()
    const file = join(dir, "storage.conf")
    writeFileSync(
      file,
      `[storage]\ndriver = "${driver}"\ngraphroot = "${store[1]}"\nrunroot = "${store[3]}"\n`
    )
    return file
  }

  const copyImages = (images: ReadonlyArray<string>) => {
    for (const [k, image] of images.entries()) {
      const tarball = join(dir, `image-${k}.tar`)
      podmanOk(["save", "-q", "-o", tarball, image])
      try {
        cliOk(["load", "-q", "-i", tarball])
      } finally {
        rmSync(tarball, { force: true })
      }
    }
  }

  const watchNetwork = (name: string) => {
    if (podman(["network", "exists", name]).status !== 0) networks.push(name)
  }

  const stopService = async () => {
    const c = child
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
    c.kill("SIGTERM")
    const killer = setTimeout(() => c.kill("SIGKILL"), 5_000)
    await exited
    clearTimeout(killer)
  }

  const startService = async (timeoutMs = 30_000) => {
    used = true
    const c = spawn("podman", [...store, "system", "service", "--time=0", `unix://${socketPath}`], {
      stdio: ["ignore", "ignore", "pipe"]
    })
    child = c
    let stderr = ""
    c.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString("utf8")).slice(-2_000)
    })
    exited = new Promise<void>((resolve) => c.once("exit", () => resolve()))
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline && c.exitCode === null) {
      const ok = await socketGet(socketPath, "/_ping", 2_000).then(
        (r) => r.status === 200,
        () => false
      )
      if (ok) return
      await new Promise((r) => setTimeout(r, 100))
    }
    await stopService()
    throw new PodmanCommandError(`podman system service did not answer on ${socketPath}: ${stderr.trim()}`)
  }

  const dispose = async (): Promise<ReadonlyArray<string>> => {
    const problems: Array<string> = []
    const step = async (what: string, f: () => Promise<void> | void) => {
      try {
        await f()
      } catch (e) {
        problems.push(`${what}: ${e instanceof Error ? e.message : String(e)}`)
      }
    }
    if (used) {
      await step("containers", () => {
        const ids = cliOk(["ps", "-aq"])
          .split("\n")
          .filter((s) => s.trim() !== "")
        if (ids.length > 0) cliOk(["rm", "-f", "-t", "0", ...ids])
      })
    }
    await step("podman service", stopService)
    for (const name of networks) {
      // Without the store flags: podman refuses while a container of the shared store uses it.
      if (podman(["network", "exists", name]).status === 0)
        await step(`network ${name}`, () => {
          const r = podman(["network", "rm", name])
          if (r.status !== 0 && !/in use|being used/i.test(r.stderr)) throw new PodmanCommandError(r.stderr)
        })
    }
    await step("temp dir", () => {
      unmountUnder(dir)
      rmSync(dir, { recursive: true, force: true })
    })
    return problems
  }

  return {
    dir,
    store,
    socketPath,
    cli,
    cliAsync,
    cliOk,
    storageConf,
    copyImages,
    watchNetwork,
    startService,
    stopService,
    dispose
  }
}

// ---------------------------------------------------------------------------------------------
// A catalog copy with its own ports

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

/**
 * Copies the catalog `from` to `to`, with every `host: N` port of its manifests moved to a free
 * port, so its containers do not collide with the same catalog run elsewhere on this machine.
 * Resolves with the mapping old port -> new port.
 */
export const copyCatalog = async (from: string, to: string): Promise<ReadonlyMap<number, number>> => {
  cpSync(from, to, { recursive: true })
  const mapping = new Map<number, number>()
  for (const entry of readdirSync(to, { withFileTypes: true })) {
    const file = join(to, entry.name, "manifest.yml")
    if (!entry.isDirectory() || !existsSync(file)) continue
    const text = readFileSync(file, "utf8")
    const ports = [...text.matchAll(/\bhost:\s*(\d+)/g)].map((m) => Number(m[1]))
    for (const p of ports) if (!mapping.has(p)) mapping.set(p, await freePort())
    writeFileSync(
      file,
      text.replace(
        /\bhost:(\s*)(\d+)/g,
        (_, space: string, p: string) => `host:${space}${mapping.get(Number(p))}`
      )
    )
  }
  return mapping
}

// ---------------------------------------------------------------------------------------------
// An archy daemon on that podman

const repoRoot = new URL("../../../", import.meta.url).pathname

export interface DaemonOptions {
  readonly appsDir: string
  readonly stateDir: string
  readonly socketPath: string
  readonly port: number
  /** Seconds between timer passes. */
  readonly interval: number
  /** React to podman events (default true). */
  readonly events?: boolean
  readonly extraArgs?: ReadonlyArray<string>
}

export interface HttpAnswer {
  readonly status: number
  readonly text: string
  /** The body parsed as JSON, or undefined. */
  readonly json: unknown
}

export interface DaemonProcess {
  /** The node process running the daemon (bin/archy execs node). */
  readonly pid: number
  readonly port: number
  /** The API token from `<state-dir>/secrets/api-token`. */
  readonly token: () => string
  /** The last 64 KiB of its stdout and stderr, interleaved. */
  readonly output: () => string
  /** Resolves when the process has exited. */
  readonly exit: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly running: () => boolean
  /** `POST /rpc` with `body` as is and the given headers; never rejects on an HTTP status. */
  readonly post: (body: string, headers?: Record<string, string>) => Promise<HttpAnswer>
  /** One JSON-RPC call with the token; the whole answer. */
  readonly rpc: (method: string, params?: Record<string, unknown>) => Promise<HttpAnswer>
  /** SIGKILL when still running. */
  readonly kill: () => void
}

/** One HTTP exchange with the daemon on 127.0.0.1. */
export const httpRequest = (
  port: number,
  method: "GET" | "POST",
  path: string,
  headers: Record<string, string> = {},
  body?: string,
  timeoutMs = 120_000
): Promise<HttpAnswer> =>
  new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method, path, headers, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("error", reject)
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          resolve({ status: res.statusCode ?? 0, text, json })
        })
      }
    )
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)))
    req.on("error", reject)
    req.end(body)
  })

/** The node process at or under `pid` (bin/archy execs node, so normally `pid` itself). */
export const nodePidOf = (pid: number): number | undefined => {
  const isNode = (p: number) => {
    try {
      return basename(readlinkSync(`/proc/${p}/exe`)) === "node"
    } catch {
      return false
    }
  }
  if (isNode(pid)) return pid
  for (const entry of readdirSync("/proc")) {
    const p = Number(entry)
    if (!Number.isInteger(p)) continue
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      if (ppid === pid && isNode(p)) return p
    } catch {
      // gone meanwhile
    }
  }
  return undefined
}

/**
 * Spawns `bin/archy daemon` (cwd the repo root) on the given podman socket, and resolves once
 * `GET /healthz` answers and the token file exists. Rejects (and kills it) when it exits first
 * or does not get there within `timeoutMs`.
 */
export const startDaemon = async (options: DaemonOptions, timeoutMs = 60_000): Promise<DaemonProcess> => {
  const args = [
    "daemon",
    "--apps",
    options.appsDir,
    "--state-dir",
    options.stateDir,
    "--socket",
    options.socketPath,
    "--port",
    String(options.port),
    "--interval",
    String(options.interval),
    ...(options.events === false ? ["--no-events"] : []),
    ...(options.extraArgs ?? [])
  ]
  const child = spawn(join(repoRoot, "bin/archy"), args, {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ARCHY_PODMAN_SOCKET: options.socketPath }
  })
  let output = ""
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-65_536)
  }
  child.stdout.on("data", collect)
  child.stderr.on("data", collect)
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal }))
  )
  const running = () => child.exitCode === null && child.signalCode === null
  const kill = () => {
    if (running()) child.kill("SIGKILL")
  }
  const tokenFile = join(options.stateDir, "secrets", "api-token")
  const token = () => readFileSync(tokenFile, "utf8").trim()
  const post = (body: string, headers: Record<string, string> = {}) =>
    httpRequest(
      options.port,
      "POST",
      "/rpc",
      { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(body)), ...headers },
      body
    )
  let nextId = 1
  const rpc = (method: string, params?: Record<string, unknown>) =>
    post(
      JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, ...(params !== undefined ? { params } : {}) }),
      {
        Authorization: `Bearer ${token()}`
      }
    )

  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && running()) {
    const up = await httpRequest(options.port, "GET", "/healthz", {}, undefined, 1_000).then(
      (r) => r.status === 200 && r.text.trim() === "ok",
      () => false
    )
    if (up && existsSync(tokenFile)) {
      const pid = child.pid === undefined ? undefined : nodePidOf(child.pid)
      if (pid === undefined) break
      return { pid, port: options.port, token, output: () => output, exit, running, post, rpc, kill }
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  const wasRunning = running()
  kill()
  const how = await exit
  throw new Error(
    `archy daemon ${wasRunning ? `did not answer /healthz within ${timeoutMs} ms` : `exited (${how.signal ?? `code ${how.code}`}) before it answered /healthz`}:\n` +
      output.slice(-4_000)
  )
}
