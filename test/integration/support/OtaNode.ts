/**
 * A node's update machinery on one machine, for the OTA suite: staged release trees built into
 * signed releases, a release mirror (HTTP on 127.0.0.1 serving an OUTDIR, or misbehaving on
 * purpose), nginx serving `<install>/current/web` over TLS as on a node (its own instance: temp
 * config, pid and logs, workers as `nobody`), and a supervisor that runs
 * `<install>/current/bin/archy daemon` and starts it again whenever it exits, as systemd's
 * `Restart=always` does.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import {
  chmodSync,
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { createServer, type Server, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { join } from "node:path"
import { run } from "./Prerequisites.ts"
import { httpRequest } from "./PrivatePodman.ts"

export const repoRoot = new URL("../../../", import.meta.url).pathname

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Runs a command to its end; throws with its output when it fails. */
export const sh = (command: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env) => {
  const r = spawnSync(command, args, { encoding: "utf8", env, timeout: 180_000, maxBuffer: 16 << 20 })
  if (r.status !== 0)
    throw new Error(`${command} ${args.join(" ")} exited ${r.status ?? r.signal}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

/**
 * `bin/archy ARGS` from this checkout, without blocking the event loop (the suite's mirrors live
 * in this process); never rejects on a non-zero exit.
 */
export const archyAsync = (args: ReadonlyArray<string>) => run(join(repoRoot, "bin/archy"), args)

/** `bin/archy ARGS` from this checkout; never throws on a non-zero exit. */
export const archy = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(join(repoRoot, "bin/archy"), args, { encoding: "utf8", env, timeout: 180_000 })

// ---------------------------------------------------------------------------------------------
// Release trees

export interface StageOptions {
  readonly version: string
  /** What web/index.html says (the suite checks which release nginx serves). */
  readonly page: string
  /** Catalog directories to copy into apps/ (none: an empty catalog). */
  readonly apps?: ReadonlyArray<string>
}

/**
 * Stages a release tree with scripts/stage-release (the product's launcher and this checkout's
 * bundle), then gives it the suite's own web/index.html and catalog.
 */
export const stageTree = (dir: string, options: StageOptions): string => {
  sh(join(repoRoot, "scripts/stage-release"), [dir, options.version])
  rmSync(join(dir, "apps"), { recursive: true, force: true })
  mkdirSync(join(dir, "apps"))
  for (const app of options.apps ?? []) sh("cp", ["-r", app, join(dir, "apps/")])
  writeFileSync(join(dir, "web/index.html"), `<!doctype html><title>archy</title><p>${options.page}</p>\n`)
  return dir
}

/** `archy release keygen --out KEY`: KEY and KEY.pub. */
export const keygen = (key: string) => {
  const r = archy(["release", "keygen", "--out", key])
  if (r.status !== 0) throw new Error(`archy release keygen failed: ${r.stderr}`)
}

/** `archy release build`: OUTDIR becomes a mirror whose latest release is `version`. */
export const buildRelease = (tree: string, version: string, key: string, outDir: string) => {
  const r = archy(["release", "build", "--from", tree, "--version", version, "--key", key, "--out", outDir])
  if (r.status !== 0) throw new Error(`archy release build ${version} failed: ${r.stderr}${r.stdout}`)
}

// ---------------------------------------------------------------------------------------------
// The install dir, byte for byte

/** Every entry under `dir`: type, mode, owner, and the bytes' sha256 or the link's target. */
export const snapshot = (dir: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  const walk = (rel: string) => {
    const p = rel === "" ? dir : join(dir, rel)
    const st = lstatSync(p)
    const head = `${rel || "."} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`
    if (st.isSymbolicLink()) out.push(`${head} -> ${readlinkSync(p)}`)
    else if (st.isDirectory()) {
      out.push(`${head} dir`)
      for (const name of readdirSync(p).sort()) walk(rel === "" ? name : `${rel}/${name}`)
    } else out.push(`${head} ${createHash("sha256").update(readFileSync(p)).digest("hex")}`)
  }
  walk("")
  return out
}

// ---------------------------------------------------------------------------------------------
// A release mirror

export type MirrorMode =
  /** Serves the files of its OUTDIR. */
  | { readonly kind: "serve"; readonly dir: string }
  /** Accepts connections and never answers. */
  | { readonly kind: "hang" }
  /** Serves OUTDIR, with one byte of the tarball flipped. */
  | { readonly kind: "tamper"; readonly dir: string }
  /** Serves OUTDIR, with a signature over other bytes. */
  | { readonly kind: "bad-signature"; readonly dir: string }

export interface Mirror {
  readonly url: string
  mode: MirrorMode
  /** Paths requested so far. */
  readonly requests: Array<string>
  readonly close: () => Promise<void>
}

export const startMirror = async (mode: MirrorMode): Promise<Mirror> => {
  const sockets = new Set<Socket>()
  const requests: Array<string> = []
  const state = { mode }
  const send = (res: ServerResponse, status: number, body: Buffer | string) => {
    res.writeHead(status, { "Content-Length": Buffer.byteLength(body) })
    res.end(body)
  }
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/"
    requests.push(path)
    const m = state.mode
    if (m.kind === "hang") return
    const name = path.replace(/^\/+/, "")
    const file = join(m.dir, name)
    if (name.includes("/") || name.startsWith(".") || !existsSync(file)) return send(res, 404, "not found")
    if (m.kind === "tamper" && name.endsWith(".tar.gz")) {
      const bytes = readFileSync(file)
      bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0x01
      return send(res, 200, bytes)
    }
    if (m.kind === "bad-signature" && name.endsWith(".sig")) {
      const sig = Buffer.from(readFileSync(file, "utf8").trim(), "base64")
      sig[0] = (sig[0] ?? 0) ^ 0x01
      return send(res, 200, `${sig.toString("base64")}\n`)
    }
    res.writeHead(200, { "Content-Length": lstatSync(file).size })
    createReadStream(file).pipe(res)
  })
  server.on("connection", (s) => {
    sockets.add(s)
    s.on("close", () => sockets.delete(s))
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    get mode() {
      return state.mode
    },
    set mode(m: MirrorMode) {
      state.mode = m
    },
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      })
  }
}

// ---------------------------------------------------------------------------------------------
// nginx in front of current/web

export interface Nginx {
  readonly url: string
  readonly errorLog: () => string
  readonly stop: () => Promise<void>
}

/**
 * nginx as on a node: TLS on 127.0.0.1 with a self-signed certificate, root
 * `<installDir>/current/web`, `try_files` falling back to index.html (the dashboard is a single
 * page app), workers as `nobody`. Every directory from / down to the install must be traversable
 * by `nobody`, as /opt/archipelago is.
 */
export const startNginx = async (dir: string, installDir: string, port: number): Promise<Nginx> => {
  mkdirSync(join(dir, "temp"), { recursive: true })
  chmodSync(dir, 0o755)
  sh("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    join(dir, "key.pem"),
    "-out",
    join(dir, "cert.pem")
  ])
  const conf = join(dir, "nginx.conf")
  const temp = (name: string) => `${name} ${join(dir, "temp", name)};`
  writeFileSync(
    conf,
    `daemon off;
master_process on;
worker_processes 1;
user nobody nogroup;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} error;
events { worker_connections 64; }
http {
  access_log off;
  ${temp("client_body_temp_path")}
  ${temp("proxy_temp_path")}
  ${temp("fastcgi_temp_path")}
  ${temp("uwsgi_temp_path")}
  ${temp("scgi_temp_path")}
  default_type text/html;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${join(dir, "cert.pem")};
    ssl_certificate_key ${join(dir, "key.pem")};
    root ${join(installDir, "current/web")};
    location / { try_files $uri $uri/ /index.html; }
  }
}
`
  )
  const child = spawn("nginx", ["-c", conf, "-p", dir], { stdio: ["ignore", "ignore", "pipe"] })
  let stderr = ""
  child.stderr?.on("data", (c: Buffer) => {
    stderr = (stderr + c.toString("utf8")).slice(-4_000)
  })
  const exited = new Promise<void>((r) => child.once("exit", () => r()))
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline && child.exitCode === null) {
    if (existsSync(join(dir, "nginx.pid"))) break
    await sleep(50)
  }
  if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}: ${stderr}`)
  return {
    url: `https://127.0.0.1:${port}/`,
    errorLog: () => (existsSync(join(dir, "error.log")) ? readFileSync(join(dir, "error.log"), "utf8") : ""),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGQUIT")
        const t = setTimeout(() => child.kill("SIGKILL"), 5_000)
        await exited
        clearTimeout(t)
      }
    }
  }
}

/** GET over TLS accepting nginx's self-signed certificate: the status and the body. */
export const getWebUi = async (url: string): Promise<{ status: number; body: string }> => {
  const https = await import("node:https")
  return new Promise((resolve, reject) => {
    const req = https.request(url, { rejectUnauthorized: false, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") })
      )
      res.on("error", reject)
    })
    req.on("timeout", () => req.destroy(new Error("timed out")))
    req.on("error", reject)
    req.end()
  })
}

// ---------------------------------------------------------------------------------------------
// The supervisor

export interface Supervisor {
  /** Daemon starts so far (1 after the first). */
  readonly starts: () => number
  /** Exits so far, with how each ended. */
  readonly exits: () => ReadonlyArray<string>
  readonly output: () => string
  /** JSON-RPC with the daemon's token; rejects when the connection breaks (a restart). */
  readonly rpc: (method: string) => Promise<{ result?: unknown; error?: { code: number; message: string } }>
  /** Resolves once /healthz answers (a daemon is up). */
  readonly waitUp: (timeoutMs?: number) => Promise<void>
  /** Stops supervising and ends the daemon (SIGTERM, then SIGKILL). */
  readonly stop: () => Promise<void>
}

/**
 * Runs `<installDir>/current/bin/archy daemon ARGS` and starts it again (after 200 ms, as
 * systemd's RestartSec) whenever it exits, for whatever reason, until `stop`; before each start,
 * image-recipe/archy-boot, as the unit's ExecStartPre.
 */
export const supervise = (options: {
  readonly installDir: string
  readonly stateDir: string
  readonly port: number
  readonly args: ReadonlyArray<string>
  readonly env?: NodeJS.ProcessEnv
}): Supervisor => {
  let child: ChildProcess | undefined
  let stopping = false
  let starts = 0
  const exits: Array<string> = []
  let output = ""
  let exited: Promise<void> = Promise.resolve()
  const start = async () => {
    starts++
    // ExecStartPre, as in image-recipe/archipelago.service.
    const pre = await run(join(repoRoot, "image-recipe/archy-boot"), [], {
      env: { ...process.env, ...options.env, ARCHY_INSTALL_DIR: options.installDir },
      timeoutMs: 60_000
    })
    output += `${pre.stdout}${pre.stderr}`
    if (stopping) return
    const c = spawn(
      join(options.installDir, "current/bin/archy"),
      ["daemon", "--port", String(options.port), "--state-dir", options.stateDir, ...options.args],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...options.env } }
    )
    child = c
    const collect = (b: Buffer) => {
      output = (output + b.toString("utf8")).slice(-200_000)
    }
    c.stdout?.on("data", collect)
    c.stderr?.on("data", collect)
    exited = new Promise<void>((resolve) =>
      c.once("exit", (code, signal) => {
        exits.push(signal ?? `exit ${code}`)
        resolve()
        if (!stopping) setTimeout(() => !stopping && void start(), 200)
      })
    )
  }
  void start()
  const token = () => readFileSync(join(options.stateDir, "secrets/api-token"), "utf8").trim()
  let id = 1
  return {
    starts: () => starts,
    exits: () => exits,
    output: () => output,
    rpc: async (method) => {
      const body = JSON.stringify({ jsonrpc: "2.0", id: id++, method })
      const r = await httpRequest(
        options.port,
        "POST",
        "/rpc",
        {
          Authorization: `Bearer ${token()}`,
          "Content-Type": "application/json",
          "Content-Length": String(Buffer.byteLength(body))
        },
        body
      )
      return r.json as { result?: unknown; error?: { code: number; message: string } }
    },
    waitUp: async (timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs
      while (Date.now() < deadline) {
        const up = await httpRequest(options.port, "GET", "/healthz", {}, undefined, 1_000).then(
          (r) => r.status === 200 && existsSync(join(options.stateDir, "secrets/api-token")),
          () => false
        )
        if (up) return
        await sleep(100)
      }
      throw new Error(
        `no daemon answered on port ${options.port} within ${timeoutMs} ms:\n${output.slice(-3_000)}`
      )
    },
    stop: async () => {
      stopping = true
      const c = child
      if (c !== undefined && c.exitCode === null && c.signalCode === null) {
        c.kill("SIGTERM")
        const t = setTimeout(() => c.kill("SIGKILL"), 10_000)
        await exited
        clearTimeout(t)
      }
    }
  }
}
