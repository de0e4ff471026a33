/**
 * A throwaway login-less user for rootless podman: home directory, subordinate uid/gid ranges,
 * `/run/user/UID` (0700, theirs) and their own `podman system service` on the rootless socket.
 * `remove` undoes all of it: the service and every process left running as the user (the
 * rootless pause process, conmon), the user with their home and subordinate ranges, and the
 * runtime directory. Needs root.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import {
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { rootlessSocket } from "@archy/podman/Socket"
import { ping } from "../../../packages/podman/test/support/PodmanService.ts"

export interface Cli {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface RootlessUser {
  readonly name: string
  readonly uid: number
  readonly gid: number
  readonly home: string
  readonly runtimeDir: string
  readonly socketPath: string
  /** Runs `args` as the user, with only their rootless environment. */
  readonly as: (
    args: ReadonlyArray<string>,
    options?: { readonly input?: Buffer; readonly timeoutMs?: number }
  ) => Cli
  /** Starts `podman system service --time=0` on `socketPath` as the user; resolves once it answers. */
  readonly startService: (timeoutMs?: number) => Promise<void>
  /** Everything created here goes; returns what could not be undone (empty when all went). */
  readonly remove: () => Promise<ReadonlyArray<string>>
}

const sh = (command: string, args: ReadonlyArray<string>): Cli => {
  const r = spawnSync(command, args, { encoding: "utf8", timeout: 60_000, cwd: "/" })
  if (r.error !== undefined) throw r.error
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const subidFiles = ["/etc/subuid", "/etc/subgid"] as const

/** `name:start:count` lines of a subordinate-id file. */
const subidRanges = (file: string): ReadonlyArray<{ name: string; start: number; count: number }> =>
  existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .map((l) => l.trim().split(":"))
        .filter((f) => f.length === 3)
        .map(([name, start, count]) => ({ name: name!, start: Number(start), count: Number(count) }))
    : []

/** Pids whose real uid is `uid`. */
const pidsOf = (uid: number): ReadonlyArray<number> =>
  readdirSync("/proc")
    .filter((d) => /^[0-9]+$/.test(d))
    .flatMap((d) => {
      try {
        const line = readFileSync(`/proc/${d}/status`, "utf8")
          .split("\n")
          .find((l) => l.startsWith("Uid:"))
        return line !== undefined && Number(line.split(/\s+/)[1]) === uid ? [Number(d)] : []
      } catch {
        return [] // it ended meanwhile
      }
    })

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export const createRootlessUser = async (name: string): Promise<RootlessUser> => {
  const added = sh("useradd", ["--create-home", "--shell", "/usr/sbin/nologin", "--user-group", name])
  if (added.status !== 0) throw new Error(`useradd ${name} failed: ${added.stderr.trim()}`)
  const undo: Array<() => Promise<string | undefined>> = []
  let service: ChildProcess | undefined

  const remove = async (): Promise<ReadonlyArray<string>> => {
    const problems: Array<string> = []
    for (const step of undo.reverse()) {
      try {
        const problem = await step()
        if (problem !== undefined) problems.push(problem)
      } catch (e) {
        problems.push(e instanceof Error ? e.message : String(e))
      }
    }
    return problems
  }

  // The user, their home and (once useradd made them) their subordinate ranges.
  undo.push(async () => {
    const r = sh("userdel", ["--remove", name])
    // userdel also drops the user's subordinate ranges; make sure none are left behind.
    for (const file of subidFiles) {
      const text = existsSync(file) ? readFileSync(file, "utf8") : ""
      const kept = text.split("\n").filter((l) => !l.startsWith(`${name}:`))
      if (kept.join("\n") !== text) writeFileSync(file, kept.join("\n"))
    }
    // 12: the home could not be removed entirely; a missing mail spool only warns.
    return r.status === 0 ? undefined : `userdel --remove ${name} exited ${r.status}: ${r.stderr.trim()}`
  })

  try {
    const uid = Number(sh("id", ["-u", name]).stdout.trim())
    const gid = Number(sh("id", ["-g", name]).stdout.trim())
    const home = sh("getent", ["passwd", name]).stdout.trim().split(":")[5] ?? `/home/${name}`

    // useradd allocates subordinate ranges when /etc/subuid exists; otherwise give the next free one.
    for (const [file, flag] of [
      ["/etc/subuid", "--add-subuids"],
      ["/etc/subgid", "--add-subgids"]
    ] as const) {
      const ranges = subidRanges(file)
      if (ranges.some((r) => r.name === name || r.name === String(uid))) continue
      const start = Math.max(100_000, ...ranges.map((r) => r.start + r.count))
      const r = sh("usermod", [flag, `${start}-${start + 65_535}`, name])
      if (r.status !== 0) throw new Error(`usermod ${flag} for ${name} failed: ${r.stderr.trim()}`)
    }

    // Their runtime directory, as pam_systemd would make it at login.
    const runtimeDir = `/run/user/${uid}`
    const madeRunUser = !existsSync("/run/user")
    rmSync(runtimeDir, { recursive: true, force: true }) // a leftover of an earlier user with this uid
    mkdirSync("/run/user", { recursive: true, mode: 0o755 })
    mkdirSync(runtimeDir, { mode: 0o700 })
    chownSync(runtimeDir, uid, gid)
    undo.push(async () => {
      rmSync(runtimeDir, { recursive: true, force: true })
      if (madeRunUser && readdirSync("/run/user").length === 0) rmdirSync("/run/user")
      return existsSync(runtimeDir) ? `${runtimeDir} is still there` : undefined
    })

    const environment = [
      `HOME=${home}`,
      `USER=${name}`,
      `LOGNAME=${name}`,
      `XDG_RUNTIME_DIR=${runtimeDir}`,
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ]
    const command = (args: ReadonlyArray<string>) => ["-u", name, "--", "env", "-i", ...environment, ...args]

    const as: RootlessUser["as"] = (args, options = {}) => {
      const r = spawnSync("runuser", command(args), {
        cwd: "/",
        encoding: "utf8",
        timeout: options.timeoutMs ?? 120_000,
        ...(options.input !== undefined ? { input: options.input } : {}),
        maxBuffer: 64 * 1024 * 1024
      })
      if (r.error !== undefined) throw r.error
      return { status: r.status, stdout: r.stdout, stderr: r.stderr }
    }

    const socketPath = rootlessSocket(uid)

    // First to run on removal: whatever still runs as the user (the service, pause process, conmon).
    undo.push(async () => {
      const child = service
      if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
        try {
          process.kill(-child.pid, "SIGTERM") // its process group: runuser, env and podman
        } catch {
          // already gone
        }
        await Promise.race([exited, sleep(5_000)])
      }
      for (let i = 0; i < 50; i++) {
        const left = pidsOf(uid)
        if (left.length === 0) return undefined
        for (const pid of left) {
          try {
            process.kill(pid, "SIGKILL")
          } catch {
            // ended meanwhile
          }
        }
        await sleep(100)
      }
      return `processes of ${name} (uid ${uid}) would not end: ${pidsOf(uid).join(", ")}`
    })

    const startService = async (timeoutMs = 30_000) => {
      const made = as(["mkdir", "-p", `${runtimeDir}/podman`])
      if (made.status !== 0) throw new Error(`mkdir ${runtimeDir}/podman as ${name}: ${made.stderr.trim()}`)
      const child = spawn(
        "runuser",
        command(["podman", "system", "service", "--time=0", `unix://${socketPath}`]),
        {
          cwd: "/",
          detached: true,
          stdio: ["ignore", "ignore", "pipe"]
        }
      )
      service = child
      let stderr = ""
      child.stderr?.on("data", (chunk: Buffer) => {
        stderr = (stderr + chunk.toString("utf8")).slice(-2_000)
      })
      const deadline = Date.now() + timeoutMs
      while (Date.now() < deadline) {
        if (child.exitCode !== null) break
        if (await ping(socketPath)) return
        await sleep(100)
      }
      throw new Error(`${name}'s podman system service did not answer on ${socketPath}: ${stderr.trim()}`)
    }

    return { name, uid, gid, home, runtimeDir, socketPath, as, startService, remove }
  } catch (e) {
    await remove()
    throw e
  }
}
