/**
 * How fast the daemon heals a broken container on real podman, with and without podman events,
 * and what it costs while idle. `bin/archy daemon` runs the fixture catalog (test/fixtures/apps,
 * host ports moved to free ones) with `--interval 30`, as on a node:
 *
 *   kill    `kill -9` of a container's main process from the host, until podman reports it running
 *           again (a new start);
 *   remove  `podman rm -f -t 0` of a container (the command's own run included), until a new
 *           container of that name runs.
 *
 * Each is measured with the daemon reacting to podman events (12 trials each), then with
 * `--no-events` (the timer alone). The timer path's delay is the time to the next tick, so it
 * depends only on when in the 30 s interval the container broke: its trials are placed at 1/6, 1/2
 * and 5/6 of the interval after a tick (found from a first, uncounted kill), a kill and a removal
 * at each, so their median is the typical case and the run stays short (3 trials each). Idle cost:
 * VmRSS of the daemon's node process and its CPU time (utime + stime) over 60 s with nothing
 * happening, in events mode.
 *
 * Trials avoid the crash backoff (the second crash of a container within its manifest's
 * `resetAfter` waits): kills go to archy-fx-bitcoind and archy-fx-lnd in turn (resetAfter 10 s),
 * each only once it has run longer than that and a pass has seen it; removals (never a crash) go to
 * the other three.
 *
 * Goals: median < 1.5 s after a kill and < 2 s after a removal with events; events >= 15x faster
 * than the timer alone (medians); idle RSS < 100 MB; idle CPU < 1 % of one core. Exits 1 when a goal
 * fails. podman is a private `podman system service` with its own store (the daemon removes every
 * container with our labels that its catalog does not name); everything is removed at the end,
 * also on failure or Ctrl-C. Needs root, podman and the test images (test/fixtures/build-images).
 * About 4 minutes.
 *
 *   pnpm bench:heal        (or: node test/bench/heal.bench.ts)
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, readFileSync } from "node:fs"
import * as http from "node:http"
import { availableParallelism, cpus } from "node:os"
import { join } from "node:path"
import { fixtureAppsDir, fixtureContainers } from "../fixtures/fixtures.ts"
import { busyboxV1 } from "../images/images.ts"
import {
  copyCatalog,
  type DaemonProcess,
  freePort,
  makePrivatePodman,
  PodmanCommandError,
  type PrivatePodman,
  privatePodmanMissing,
  socketGet,
  startDaemon
} from "../integration/support/PrivatePodman.ts"

/** Killed in turn; their manifests' restart.resetAfter, in ms. */
const KILL_TARGETS = [
  { name: "archy-fx-bitcoind", resetAfterMs: 10_000 },
  { name: "archy-fx-lnd", resetAfterMs: 10_000 }
] as const
/** Removed in turn (a removal is not a crash). */
const REMOVE_TARGETS = ["archy-fx-worker-queue", "archy-fx-worker", "archy-fx-ui"] as const
/** The timer-only trials each kill a different container, so none backs off. */
const TIMER_KILL_TARGETS = ["archy-fx-lnd", "archy-fx-worker-queue", "archy-fx-worker"] as const
const TIMER_REMOVE_TARGETS = ["archy-fx-ui", "archy-fx-bitcoind", "archy-fx-lnd"] as const

const INTERVAL_S = 30
const EVENT_TRIALS = 12
const TIMER_PHASES = [1 / 6, 1 / 2, 5 / 6]
const IDLE_MS = 60_000
/** Quiet time after each heal (health checks settle, their passes run). */
const SETTLE_MS = 1_500
const POLL_MS = 50

const GOAL = { killMs: 1_500, removeMs: 2_000, speedup: 15, rssMb: 100, cpuPercent: 1 }

class BenchError extends Error {}

const log = (line = "") => process.stdout.write(`${line}\n`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

let interrupted = false
const onSignal = () => {
  interrupted = true
}
const checkInterrupted = () => {
  if (interrupted) throw new BenchError("interrupted")
}

// ---------------------------------------------------------------------------------------------
// Observing containers through the private podman's API (one cheap request per poll).

interface Seen {
  readonly id: string
  readonly status: string
  readonly startedAt: string
  readonly pid: number
}

const inspect = async (podman: PrivatePodman, name: string): Promise<Seen | undefined> => {
  const r = await socketGet(podman.socketPath, `/v4.0.0/libpod/containers/${encodeURIComponent(name)}/json`)
  // A container being removed can answer 500 "no such container" for a moment.
  if (r.status === 404 || (r.status === 500 && /no such container/.test(r.body))) return undefined
  if (r.status !== 200) throw new BenchError(`inspect ${name}: HTTP ${r.status}: ${r.body.slice(0, 300)}`)
  const j = JSON.parse(r.body) as { Id: string; State: { Status: string; StartedAt: string; Pid: number } }
  return { id: j.Id, status: j.State.Status, startedAt: j.State.StartedAt, pid: j.State.Pid }
}

const running = async (podman: PrivatePodman, name: string): Promise<Seen> => {
  const c = await inspect(podman, name)
  if (c?.status !== "running" || c.pid <= 0) throw new BenchError(`${name} is not running: ${c?.status}`)
  return c
}

/** Polls until `ok` holds; the time since `t0` in ms. */
const until = async (
  podman: PrivatePodman,
  name: string,
  ok: (c: Seen | undefined) => boolean,
  t0: number,
  timeoutMs: number,
  what: string,
  daemon: DaemonProcess
): Promise<number> => {
  for (;;) {
    const c = await inspect(podman, name)
    const now = performance.now()
    if (ok(c)) return now - t0
    checkInterrupted()
    if (!daemon.running()) throw new BenchError(`the daemon exited:\n${daemon.output().slice(-3_000)}`)
    if (now - t0 > timeoutMs)
      throw new BenchError(
        `${what}: ${name} was not running again after ${Math.round(timeoutMs / 1000)} s\n` +
          daemon.output().slice(-3_000)
      )
    await sleep(POLL_MS)
  }
}

/** `kill -9` of the container's main process; resolves when it runs again (a new start). */
const killTrial = async (podman: PrivatePodman, daemon: DaemonProcess, name: string, timeoutMs: number) => {
  const before = await running(podman, name)
  const t0 = performance.now()
  process.kill(before.pid, "SIGKILL")
  return until(
    podman,
    name,
    (c) => c?.status === "running" && c.startedAt !== before.startedAt,
    t0,
    timeoutMs,
    "kill",
    daemon
  )
}

/** `podman rm -f -t 0`; resolves when a new container of that name runs. */
const removeTrial = async (podman: PrivatePodman, daemon: DaemonProcess, name: string, timeoutMs: number) => {
  const before = await running(podman, name)
  const t0 = performance.now()
  const rm = podman.cliAsync(["rm", "-f", "-t", "0", name]).then((r) => {
    if (r.status !== 0) throw new BenchError(`podman rm -f ${name}: ${r.stderr.trim()}`)
    return performance.now() - t0
  })
  const healed = await until(
    podman,
    name,
    (c) => c?.status === "running" && c.id !== before.id,
    t0,
    timeoutMs,
    "remove",
    daemon
  )
  return { healed, command: await rm }
}

const allRunning = async (podman: PrivatePodman, daemon: DaemonProcess, timeoutMs: number) => {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const seen = await Promise.all(fixtureContainers.map((n) => inspect(podman, n)))
    if (seen.every((c) => c?.status === "running")) return
    checkInterrupted()
    if (performance.now() > deadline) {
      const states = fixtureContainers.map((n, k) => `${n}=${seen[k]?.status ?? "missing"}`).join(" ")
      throw new BenchError(
        `not all running after ${timeoutMs} ms: ${states}\n${daemon.output().slice(-3_000)}`
      )
    }
    await sleep(200)
  }
}

/** Running for at least `ms` (by podman's StartedAt). */
const waitRunningFor = async (podman: PrivatePodman, name: string, ms: number) => {
  const c = await running(podman, name)
  const startedMs = Date.parse(c.startedAt)
  if (Number.isNaN(startedMs)) throw new BenchError(`${name}: unreadable StartedAt ${c.startedAt}`)
  const since = Date.now() - startedMs
  if (since < ms) await sleep(ms - since)
}

/** The container events the daemon reacts to with a pass (as packages/daemon/src/Daemon.ts). */
const HEALING_EVENTS = new Set(["died", "stop", "remove", "kill", "cleanup", "exited", "oom"])

/**
 * Counts the container events podman's API streams (the daemon's source) until `stop`. podman's
 * events log is machine-wide: other stores' containers show up here too.
 */
const countEvents = (socketPath: string) => {
  let healing = 0
  const req = http.request(
    { socketPath, path: "/v4.0.0/libpod/events?stream=true", method: "GET", headers: { Host: "d" } },
    (res) => {
      let buffer = ""
      res.on("data", (chunk: Buffer) => {
        buffer += chunk.toString("utf8")
        for (let at = buffer.indexOf("\n"); at >= 0; at = buffer.indexOf("\n")) {
          const line = buffer.slice(0, at)
          buffer = buffer.slice(at + 1)
          try {
            const e = JSON.parse(line) as { Type?: string; Action?: string; status?: string }
            if (e.Type === "container" && HEALING_EVENTS.has(e.Action ?? e.status ?? "")) healing++
          } catch {
            // not an event line
          }
        }
      })
      res.on("error", () => {})
    }
  )
  req.on("error", () => {})
  req.end()
  return {
    stop: () => {
      req.destroy()
      return healing
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The daemon process

const clockTicks = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" })
  const n = Number(r.stdout.trim())
  return Number.isInteger(n) && n > 0 ? n : 100
})()

/** utime + stime of a process, in seconds. */
const cpuSeconds = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  // After the comm: state is field 3, utime field 14, stime field 15 (1-based, man 5 proc).
  return (Number(fields[11]) + Number(fields[12])) / clockTicks
}

/** VmRSS and its anonymous and file-backed parts, in MB, from /proc/PID/status. */
const memory = (pid: number) => {
  const lines = readFileSync(`/proc/${pid}/status`, "utf8").split("\n")
  const mb = (key: string) => {
    const line = lines.find((l) => l.startsWith(`${key}:`))
    if (line === undefined) throw new BenchError(`no ${key} in /proc/${pid}/status`)
    return Number(line.replace(/[^0-9]/g, "")) / 1024
  }
  return { rss: mb("VmRSS"), anon: mb("RssAnon"), file: mb("RssFile") }
}

const stopDaemon = async (daemon: DaemonProcess) => {
  process.kill(daemon.pid, "SIGTERM")
  const exit = await Promise.race([daemon.exit, sleep(30_000).then(() => undefined)])
  if (exit === undefined) throw new BenchError("the daemon did not exit within 30 s of SIGTERM")
  if (exit.code !== 0)
    throw new BenchError(`the daemon exited ${exit.signal ?? `with code ${exit.code}`} on SIGTERM`)
}

// ---------------------------------------------------------------------------------------------
// Statistics and the report

const quantile = (xs: ReadonlyArray<number>, q: number): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const at = (sorted.length - 1) * q
  const lo = Math.floor(at)
  const hi = Math.ceil(at)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo)
}
const median = (xs: ReadonlyArray<number>) => quantile(xs, 0.5)
const max = (xs: ReadonlyArray<number>) => Math.max(...xs)
const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`

// ---------------------------------------------------------------------------------------------
// The run

interface Made {
  podman?: PrivatePodman
  readonly daemons: Array<DaemonProcess>
}

const run = async (made: Made): Promise<boolean> => {
  const podman = makePrivatePodman({ prefix: "archy-bench-heal-" })
  made.podman = podman
  podman.copyImages([busyboxV1])
  podman.watchNetwork("archipelago")
  await podman.startService()
  const appsDir = join(podman.dir, "apps")
  await copyCatalog(fixtureAppsDir, appsDir)
  const stateDir = join(podman.dir, "state")
  mkdirSync(stateDir)
  const start = async (events: boolean) => {
    const d = await startDaemon({
      appsDir,
      stateDir,
      socketPath: podman.socketPath,
      port: await freePort(),
      interval: INTERVAL_S,
      events
    })
    made.daemons.push(d)
    return d
  }

  // --- with events ----------------------------------------------------------------------------

  const daemon = await start(true)
  await allRunning(podman, daemon, 60_000)
  await sleep(3_000)
  const events = { kill: [] as Array<number>, remove: [] as Array<number>, rmCommand: [] as Array<number> }
  const eventBoundMs = 20_000
  for (let i = 0; i < EVENT_TRIALS; i++) {
    checkInterrupted()
    const kill = KILL_TARGETS[i % KILL_TARGETS.length]!
    // The removal's pass sees the kill target running past its resetAfter: its crash is forgotten.
    await waitRunningFor(podman, kill.name, kill.resetAfterMs + 500)
    const removed = await removeTrial(
      podman,
      daemon,
      REMOVE_TARGETS[i % REMOVE_TARGETS.length]!,
      eventBoundMs
    )
    events.remove.push(removed.healed)
    events.rmCommand.push(removed.command)
    await sleep(SETTLE_MS)
    events.kill.push(await killTrial(podman, daemon, kill.name, eventBoundMs))
    await sleep(SETTLE_MS)
    process.stdout.write(`\revents: ${i + 1}/${EVENT_TRIALS} trials of each`)
  }
  process.stdout.write("\n")

  // --- idle cost ------------------------------------------------------------------------------

  await allRunning(podman, daemon, 30_000)
  await sleep(5_000)
  checkInterrupted()
  const events0 = countEvents(podman.socketPath)
  const cpu0 = cpuSeconds(daemon.pid)
  const wall0 = performance.now()
  const memorySamples: Array<ReturnType<typeof memory>> = []
  while (performance.now() - wall0 < IDLE_MS) {
    checkInterrupted()
    await sleep(Math.min(5_000, IDLE_MS - (performance.now() - wall0)))
    memorySamples.push(memory(daemon.pid))
  }
  const idleCpuPercent = ((cpuSeconds(daemon.pid) - cpu0) / ((performance.now() - wall0) / 1000)) * 100
  const idleMemory = memorySamples[memorySamples.length - 1]!
  const idleEvents = events0.stop()
  const idleRss = idleMemory.rss
  process.stdout.write(`idle: ${(IDLE_MS / 1000).toFixed(0)} s measured\n`)
  await stopDaemon(daemon)

  // --- the timer alone ------------------------------------------------------------------------

  const timerDaemon = await start(false)
  await allRunning(podman, timerDaemon, 60_000)
  await sleep(3_000)
  const timerBoundMs = 2 * INTERVAL_S * 1000 + 15_000
  // An uncounted kill finds the timer's phase: the heal lands a pass-length after a tick.
  const calibrationAt = performance.now()
  const calibration = await killTrial(podman, timerDaemon, "archy-fx-bitcoind", timerBoundMs)
  const tick = calibrationAt + calibration
  const timer = { kill: [] as Array<number>, remove: [] as Array<number> }
  for (const [k, phase] of TIMER_PHASES.entries()) {
    checkInterrupted()
    // Wait for the next moment `phase` of an interval after a tick.
    const intervalMs = INTERVAL_S * 1000
    const sinceTick = (performance.now() - tick) % intervalMs
    const wait = phase * intervalMs - sinceTick
    await sleep(wait >= 0 ? wait : wait + intervalMs)
    const [killed, removed] = await Promise.all([
      killTrial(podman, timerDaemon, TIMER_KILL_TARGETS[k]!, timerBoundMs),
      removeTrial(podman, timerDaemon, TIMER_REMOVE_TARGETS[k]!, timerBoundMs)
    ])
    timer.kill.push(killed)
    timer.remove.push(removed.healed)
    process.stdout.write(`\rtimer only: ${k + 1}/${TIMER_PHASES.length} trials of each`)
  }
  process.stdout.write("\n")
  await stopDaemon(timerDaemon)

  // --- report ---------------------------------------------------------------------------------

  const version = podman.cliOk(["version", "--format", "{{.Client.Version}}"]).trim()
  const cpuModel = cpus()[0]?.model.trim() ?? "unknown cpu"
  log()
  log(
    `heal benchmark  node ${process.version}  podman ${version}  ${availableParallelism()} cores (${cpuModel})`
  )
  log(
    `fixture catalog (5 containers), --interval ${INTERVAL_S}, --debounce-ms 300 (default); ` +
      `a private podman service with its own store`
  )
  log()
  const header = ["time until running again", "trials", "median", "max"]
  const rows: ReadonlyArray<readonly [string, ReadonlyArray<number>]> = [
    ["kill -9, events", events.kill],
    ["podman rm -f, events", events.remove],
    ["kill -9, timer only", timer.kill],
    ["podman rm -f, timer only", timer.remove]
  ]
  const cells = rows.map(([label, xs]) => [label, String(xs.length), secs(median(xs)), secs(max(xs))])
  const widths = header.map((h, k) => Math.max(h.length, ...cells.map((r) => r[k]!.length)))
  const line = (row: ReadonlyArray<string>) =>
    row.map((cell, k) => (k === 0 ? cell.padEnd(widths[k]!) : cell.padStart(widths[k]!))).join("  ")
  log(line(header))
  for (const row of cells) log(line(row))
  log()
  log(
    `the podman rm -f command itself took ${secs(median(events.rmCommand))} (median) of the removal's time; ` +
      `timer-only trials at ${TIMER_PHASES.map((p) => `${Math.round(p * INTERVAL_S)} s`).join(", ")} after a tick ` +
      `(an uncounted first kill, healed after ${secs(calibration)}, found the tick)`
  )
  log(
    `idle, events on, ${(IDLE_MS / 1000).toFixed(0)} s: node pid ${daemon.pid} VmRSS ${idleRss.toFixed(1)} MB at the end ` +
      `(${idleMemory.anon.toFixed(1)} MB anonymous, ${idleMemory.file.toFixed(1)} MB mapped from files; ` +
      `${Math.min(...memorySamples.map((m) => m.rss)).toFixed(1)} to ${max(memorySamples.map((m) => m.rss)).toFixed(1)} MB ` +
      `over the period), CPU ${idleCpuPercent.toFixed(2)} % of one core; ${idleEvents} podman events of the ` +
      `kinds that ask for a pass came in meanwhile (from other podman users: podman's events log is machine-wide)`
  )
  log()
  const killSpeedup = median(timer.kill) / median(events.kill)
  const removeSpeedup = median(timer.remove) / median(events.remove)
  const goals: ReadonlyArray<readonly [string, string, boolean]> = [
    [
      "median after a kill, events",
      `${secs(median(events.kill))} < ${secs(GOAL.killMs)}`,
      median(events.kill) < GOAL.killMs
    ],
    [
      "median after a removal, events",
      `${secs(median(events.remove))} < ${secs(GOAL.removeMs)}`,
      median(events.remove) < GOAL.removeMs
    ],
    ["timer / events, kill", `${killSpeedup.toFixed(1)}x >= ${GOAL.speedup}x`, killSpeedup >= GOAL.speedup],
    [
      "timer / events, removal",
      `${removeSpeedup.toFixed(1)}x >= ${GOAL.speedup}x`,
      removeSpeedup >= GOAL.speedup
    ],
    ["idle RSS", `${idleRss.toFixed(1)} MB < ${GOAL.rssMb} MB`, idleRss < GOAL.rssMb],
    ["idle CPU", `${idleCpuPercent.toFixed(2)} % < ${GOAL.cpuPercent} %`, idleCpuPercent < GOAL.cpuPercent]
  ]
  const goalWidth = Math.max(...goals.map(([g]) => g.length))
  const valueWidth = Math.max(...goals.map(([, v]) => v.length))
  for (const [goal, value, ok] of goals)
    log(`${goal.padEnd(goalWidth)}  ${value.padEnd(valueWidth)}  ${ok ? "PASS" : "FAIL"}`)
  const ok = goals.every(([, , pass]) => pass)
  log(ok ? "PASS" : "FAIL: a goal was missed")
  return ok
}

const teardown = async (made: Made): Promise<boolean> => {
  for (const d of made.daemons) {
    d.kill()
    await d.exit
  }
  const problems = (await made.podman?.dispose()) ?? []
  for (const p of problems) process.stderr.write(`teardown: ${p}\n`)
  return problems.length === 0
}

const main = async (): Promise<number> => {
  const why = privatePodmanMissing([busyboxV1])
  if (why !== undefined) {
    process.stderr.write(`cannot run the heal benchmark: ${why}\n`)
    return 1
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  const made: Made = { daemons: [] }
  let ok = false
  try {
    ok = await run(made)
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e)
    process.stderr.write(interrupted ? "\ninterrupted; cleaning up\n" : `\nFAIL: ${message}\n`)
    const expected = e instanceof BenchError || e instanceof PodmanCommandError
    if (!interrupted && !expected && e instanceof Error && e.stack !== undefined) {
      process.stderr.write(`${e.stack}\n`)
    }
  } finally {
    if (!(await teardown(made))) ok = false
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
  }
  return ok ? 0 : 1
}

process.exitCode = await main()
