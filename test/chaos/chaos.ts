/**
 * The chaos matrix: `archy daemon` runs a node of local test apps (default test/fixtures/apps,
 * host ports moved to free ones) on a private podman store, with its state dir on a small tmpfs;
 * each fault below is done to it in turn, and the time until the node is whole again measured:
 * every container running, every rendered config back to its bytes, and a marker file in each
 * app's data dir unchanged ("data lost" otherwise).
 *
 *   kill -9            SIGKILL of a container's main process from the host
 *   podman rm -f       a container removed behind the daemon's back
 *   podman stop        a container stopped behind the daemon's back
 *   state DB deleted   the store's libpod/bolt_state.db deleted with containers running (FM6)
 *   config edited      the rpcauth line of a rendered config changed
 *   config deleted     a rendered config deleted
 *   corrupt manifest   an app's manifest.yml overwritten with garbage: the rejection is reported,
 *                      the app keeps running, a restarted daemon still heals it (its last good
 *                      manifest is persisted); then the file is repaired
 *   daemon SIGKILL     the daemon killed in the middle of a pass (after a Create, before its
 *                      Start), then started again
 *   podman API killed  the API service killed (SIGKILL) for 6 s, a container removed meanwhile:
 *                      the daemon keeps running and heals once the service is back
 *   state dir full     the state dir's filesystem filled, then a rendered config spoiled: the
 *                      write fails with a clear error and leaves no temporary file, nothing else
 *                      is lost, and the file is back once space returns
 *
 * Prints one table (scenario, healed, time to heal, data lost) and exits 1 when any row failed.
 * Needs root (tmpfs, podman), podman and the test images (test/fixtures/build-images). Everything
 * is removed at the end, also on failure or Ctrl-C.
 *
 *   test/chaos/run [--apps DIR] [--only TEXT]   (--only: the scenarios whose name contains TEXT)
 */

import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync
} from "node:fs"
import { join } from "node:path"
import { loadCatalog } from "@archy/core/Catalog"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Effect from "effect/Effect"
import { fixtureAppsDir } from "../fixtures/fixtures.ts"
import { busyboxV1 } from "../images/images.ts"
import {
  copyCatalog,
  type DaemonProcess,
  freePort,
  makePrivatePodman,
  privatePodmanMissing,
  startDaemon
} from "../integration/support/PrivatePodman.ts"

/** Seconds between the daemon's timer passes: file faults (no podman event) heal on the timer. */
const INTERVAL_S = 2
/** How long one scenario may take to heal. */
const HEAL_TIMEOUT_MS = 60_000
/** The state dir's tmpfs: room for the node's files, small enough to fill at once. */
const STATE_TMPFS = "size=16m"

const log = (line = "") => process.stdout.write(`${line}\n`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const sha = (path: string) =>
  existsSync(path) ? createHash("sha256").update(readFileSync(path)).digest("hex") : "missing"

class ChaosError extends Error {}

interface Row {
  readonly scenario: string
  readonly healed: boolean
  readonly ms?: number
  readonly dataLost: ReadonlyArray<string>
  readonly note: string
}

interface Container {
  readonly name: string
  readonly app: string
}

const argValue = (flag: string): string | undefined => {
  const k = process.argv.indexOf(flag)
  return k >= 0 ? process.argv[k + 1] : undefined
}

let interrupted = false
for (const s of ["SIGINT", "SIGTERM"] as const)
  process.on(s, () => {
    interrupted = true
  })

const main = async (): Promise<boolean> => {
  const sourceApps = argValue("--apps") ?? fixtureAppsDir
  const only = argValue("--only")
  const why = privatePodmanMissing([busyboxV1])
  if (why !== undefined) throw new ChaosError(`the chaos matrix cannot run: ${why}`)

  const podman = makePrivatePodman({ prefix: "archy-chaos-" })
  let daemon: DaemonProcess | undefined
  const rows: Array<Row> = []
  try {
    podman.copyImages([busyboxV1])
    podman.watchNetwork("archipelago")
    await podman.startService()
    const appsDir = join(podman.dir, "apps")
    await copyCatalog(sourceApps, appsDir)
    const stateDir = join(podman.dir, "state")
    mkdirSync(stateDir)
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", STATE_TMPFS, "tmpfs", stateDir], {
      encoding: "utf8"
    })
    if (mounted.status !== 0) throw new ChaosError(`cannot mount a tmpfs on ${stateDir}: ${mounted.stderr}`)

    const catalog = await Effect.runPromise(loadCatalog(appsDir).pipe(Effect.provide(NodeServices.layer)))
    if (catalog.issues.length > 0)
      throw new ChaosError(
        `the catalog ${sourceApps} has issues:\n${catalog.issues.map((i) => i.message).join("\n")}`
      )
    const apps = catalog.apps.filter((a) => a.manifest.defaultInstalled === true)
    const containers: ReadonlyArray<Container> = apps.flatMap((a) =>
      a.manifest.containers.map((c) => ({ name: c.name, app: a.manifest.id }))
    )
    const files = apps.flatMap((a) =>
      (a.manifest.files ?? []).map((f) => join(stateDir, "apps", a.manifest.id, f.path))
    )
    const markers = apps.map((a) => join(stateDir, "apps", a.manifest.id, "chaos-marker"))
    if (containers.length < 3 || files.length === 0)
      throw new ChaosError("the catalog needs at least 3 default containers and one rendered file")

    const start = async () => {
      daemon = await startDaemon({
        appsDir,
        stateDir,
        socketPath: podman.socketPath,
        port: await freePort(),
        interval: INTERVAL_S
      })
      return daemon
    }

    /** Name -> {id, pid, state}, from the store itself (works while the API service is down). */
    const ps = async () => {
      const r = await podman.cliAsync(["ps", "-a", "--format", "json"], 60_000)
      const list = JSON.parse(r.stdout || "[]") as Array<{
        Names: Array<string>
        State: string
        Id: string
        Pid: number
      }>
      return new Map(list.map((c) => [c.Names[0]!, { id: c.Id, state: c.State, pid: c.Pid }]))
    }

    const baseline = new Map<string, string>()
    const whole = async (): Promise<boolean> => {
      const seen = await ps()
      return (
        containers.every((c) => seen.get(c.name)?.state === "running") &&
        files.every((f) => sha(f) === baseline.get(f))
      )
    }
    const lost = () =>
      markers.filter((m) => !existsSync(m) || readFileSync(m, "utf8") !== `chaos marker ${m}\n`)

    const waitWhole = async (t0: number, timeoutMs = HEAL_TIMEOUT_MS): Promise<number | undefined> => {
      while (performance.now() - t0 < timeoutMs) {
        if (interrupted) throw new ChaosError("interrupted")
        if (await whole()) return performance.now() - t0
        await sleep(100)
      }
      return undefined
    }

    // --- the node, whole ------------------------------------------------------------------------
    await start()
    const bootT0 = performance.now()
    for (;;) {
      const seen = await ps()
      if (containers.every((c) => seen.get(c.name)?.state === "running") && files.every(existsSync)) break
      if (performance.now() - bootT0 > 120_000)
        throw new ChaosError(`the node did not come up within 120 s\n${daemon!.output().slice(-4_000)}`)
      await sleep(200)
    }
    await sleep(2 * INTERVAL_S * 1000)
    for (const f of files) baseline.set(f, sha(f))
    for (const m of markers) {
      mkdirSync(join(m, ".."), { recursive: true })
      writeFileSync(m, `chaos marker ${m}\n`)
    }
    log(
      `node up in ${((performance.now() - bootT0) / 1000).toFixed(1)} s: ${containers.length} containers, ${files.length} rendered files`
    )

    const scenario = async (
      name: string,
      run: () => Promise<{
        readonly t0: number
        readonly note?: string
        readonly extra?: () => string | undefined
      }>
    ) => {
      if (interrupted) throw new ChaosError("interrupted")
      if (only !== undefined && !name.includes(only)) return
      let row: Row
      try {
        const { t0, note, extra } = await run()
        const ms = await waitWhole(t0)
        const problem = ms === undefined ? `not whole after ${HEAL_TIMEOUT_MS / 1000} s` : extra?.()
        const alive = daemon?.running() === true
        row = {
          scenario: name,
          healed: ms !== undefined && problem === undefined && alive,
          ...(ms !== undefined ? { ms } : {}),
          dataLost: lost(),
          note: !alive ? "the daemon is not running" : (problem ?? note ?? "")
        }
      } catch (e) {
        row = {
          scenario: name,
          healed: false,
          dataLost: lost(),
          note: e instanceof Error ? e.message : String(e)
        }
      }
      rows.push(row)
      log(
        `${row.healed ? "healed" : "FAILED"}  ${name}${row.ms !== undefined ? ` in ${(row.ms / 1000).toFixed(2)} s` : ""}${row.note !== "" ? `: ${row.note}` : ""}`
      )
      if (!row.healed) log(daemon?.output().slice(-3_000) ?? "")
      // Let health verdicts and passes settle before the next fault.
      await waitWhole(performance.now())
      await sleep(1_500)
    }

    /**
     * What the daemon printed since `mark()`. Its output is kept as a sliding 64 KiB window, so
     * an offset would drift: the mark is the window's last 300 characters, found again later.
     */
    const mark = () => {
      const tail = daemon!.output().slice(-300)
      return () => {
        const out = daemon!.output()
        const at = tail === "" ? 0 : out.lastIndexOf(tail)
        return at < 0 ? out : out.slice(at + tail.length)
      }
    }

    const [c0, c1, c2] = containers.slice(-3) as [Container, Container, Container]
    const fileToEdit = files[0]!
    const fileToDelete = files[files.length - 1]!
    // The last app in dependency order: nothing depends on it.
    const corruptApp = apps[apps.length - 1]!.manifest.id
    const corruptContainer = containers.find((c) => c.app === corruptApp)!

    await scenario("kill -9 of a container process", async () => {
      const before = (await ps()).get(c0.name)!
      const t0 = performance.now()
      process.kill(before.pid, "SIGKILL")
      return { t0, note: c0.name }
    })

    await scenario("podman rm -f of a container", async () => {
      const t0 = performance.now()
      podman.cliOk(["rm", "-f", "-t", "0", c1.name])
      return { t0, note: c1.name }
    })

    await scenario("podman stop of a container", async () => {
      const t0 = performance.now()
      podman.cliOk(["stop", "-t", "0", c2.name])
      return { t0, note: c2.name }
    })

    await scenario("bolt_state.db deleted, containers running", async () => {
      const before = await ps()
      const t0 = performance.now()
      rmSync(join(podman.dir, "store/root/libpod/bolt_state.db"))
      return {
        t0,
        extra: () => {
          const left = podman.cliOk(["ps", "-a", "--external", "--format", "{{.Names}} {{.State}}"])
          const orphans = left.split("\n").filter((l) => /storage$/i.test(l.trim()))
          if (orphans.length > 0) return `orphans left in storage: ${orphans.join(", ")}`
          const images = podman.cliOk(["images", "-q"]).trim().split("\n").length
          return images >= 1 ? undefined : "images are gone"
        },
        note: `${before.size} containers recreated under the same names`
      }
    })

    await scenario("rendered config edited (rpcauth)", async () => {
      const text = readFileSync(fileToEdit, "utf8")
      const edited = /^rpcauth=.*$/m.test(text)
        ? text.replace(/^rpcauth=.*$/m, "rpcauth=archipelago:0000$0000")
        : `${text}# edited\n`
      const t0 = performance.now()
      writeFileSync(fileToEdit, edited)
      return { t0, note: fileToEdit.split("/").slice(-1)[0]! }
    })

    await scenario("rendered config deleted", async () => {
      const t0 = performance.now()
      rmSync(fileToDelete)
      return { t0, note: fileToDelete.split("/").slice(-1)[0]! }
    })

    await scenario("corrupt manifest (kept as last good, across a restart)", async () => {
      const manifest = join(appsDir, corruptApp, "manifest.yml")
      const good = readFileSync(manifest, "utf8")
      const before = (await ps()).get(corruptContainer.name)!
      writeFileSync(manifest, "id: [this is not\n  a manifest\n")
      // A few timer passes with the broken file: rejected, reported, the app untouched.
      await sleep(3 * INTERVAL_S * 1000)
      const rejected = /keeps running as its last good manifest says/.test(daemon!.output())
      const untouched = (await ps()).get(corruptContainer.name)?.id === before.id
      // A restart reads the memory from the state dir; it still heals the app.
      daemon!.kill()
      await daemon!.exit
      await start()
      await sleep(3 * INTERVAL_S * 1000)
      const t0 = performance.now()
      podman.cliOk(["rm", "-f", "-t", "0", corruptContainer.name])
      const healedBroken = await waitWhole(t0, 30_000)
      const stillRejected = /keeps running as its last good manifest says/.test(daemon!.output())
      writeFileSync(manifest, good)
      return {
        t0,
        note: `${corruptApp}: rejection reported, container kept, healed after a restart`,
        extra: () =>
          !rejected
            ? "the rejection was not reported"
            : !untouched
              ? `${corruptContainer.name} was changed while its manifest was broken`
              : healedBroken === undefined
                ? `${corruptContainer.name} was not healed while its manifest was broken`
                : !stillRejected
                  ? "the restarted daemon did not report the rejection"
                  : undefined
      }
    })

    await scenario("daemon SIGKILL mid-pass, then restart", async () => {
      const target = c1.name
      const since = mark()
      podman.cliOk(["rm", "-f", "-t", "0", target])
      // Kill it right after the pass created the container, before it started it.
      const deadline = performance.now() + 30_000
      while (!since().includes(`Create container:${target}`)) {
        if (performance.now() > deadline) throw new ChaosError(`the daemon never created ${target}`)
        await sleep(5)
      }
      const t0 = performance.now()
      daemon!.kill()
      await daemon!.exit
      await start()
      return { t0, note: `killed after Create ${target}` }
    })

    await scenario("podman API service killed, then back", async () => {
      // SIGKILL of this run's own `podman system service` (found by its private socket).
      const service = readdirSync("/proc")
        .filter((p) => /^\d+$/.test(p))
        .find((p) => {
          try {
            const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0")
            return cmd.includes("service") && cmd.includes(`unix://${podman.socketPath}`)
          } catch {
            return false
          }
        })
      if (service === undefined) throw new ChaosError("cannot find this run's podman service process")
      process.kill(Number(service), "SIGKILL")
      await podman.stopService()
      // While it is down: passes fail and are retried; a container disappears meanwhile.
      podman.cliOk(["rm", "-f", "-t", "0", c0.name])
      await sleep(3 * INTERVAL_S * 1000)
      const alive = daemon!.running()
      const t0 = performance.now()
      await podman.startService()
      return {
        t0,
        note: `down ${3 * INTERVAL_S} s`,
        extra: () => (alive ? undefined : "the daemon died while podman was down")
      }
    })

    await scenario("state dir full, then space returns", async () => {
      const filler = join(stateDir, "chaos-filler")
      // Fill the tmpfs to the last byte.
      spawnSync("dd", ["if=/dev/zero", `of=${filler}`, "bs=64k"], { encoding: "utf8" })
      const since = mark()
      // Changed in place, same length: no new space is needed to break it, only to repair it.
      const bytes = readFileSync(fileToDelete)
      const fd = openSync(fileToDelete, "r+")
      writeSync(fd, Buffer.alloc(bytes.length, "#"), 0, bytes.length, 0)
      closeSync(fd)
      const deadline = performance.now() + 30_000
      while (!/no space left on device/i.test(since())) {
        if (performance.now() > deadline)
          throw new ChaosError(
            `no write failed with ENOSPC while the disk was full (df: ${spawnSync("df", ["-h", stateDir], { encoding: "utf8" }).stdout.trim().split("\n").pop()})\n${since().slice(-2_000)}`
          )
        await sleep(50)
      }
      await sleep(2 * INTERVAL_S * 1000)
      const dir = fileToDelete.slice(0, fileToDelete.lastIndexOf("/"))
      const tmpLeft = readdirSync(dir).filter((f) => f.includes("archy-tmp"))
      const clear = /writing [^ ]+ failed at (write|fsync|create the directory): ENOSPC/.test(since())
      const running = (await ps()).size >= containers.length
      const t0 = performance.now()
      rmSync(filler)
      return {
        t0,
        note: `${statSync(stateDir).isDirectory() ? "tmpfs" : "?"} ${STATE_TMPFS} filled; write failed with ENOSPC`,
        extra: () =>
          tmpLeft.length > 0
            ? `temporary files left: ${tmpLeft.join(", ")}`
            : !clear
              ? "the error did not say which file and why"
              : !running
                ? "containers were lost while the disk was full"
                : undefined
      }
    })
  } finally {
    if (daemon !== undefined) {
      daemon.kill()
      await daemon.exit
    }
    // Had the FM6 scenario failed, orphans podman no longer lists would outlive the store.
    const external = podman.cli(["ps", "-a", "--external", "-q", "--no-trunc"]).stdout.split("\n")
    for (const id of external.filter((s) => /^[0-9a-f]{64}$/.test(s.trim()))) {
      spawnSync("runc", ["delete", "--force", id.trim()])
      podman.cli(["rm", "-f", "--storage", id.trim()])
    }
    const problems = await podman.dispose()
    if (problems.length > 0) log(`cleanup: ${problems.join("; ")}`)
  }

  // --- the table ------------------------------------------------------------------------------
  const header = ["scenario", "healed", "time to heal", "data lost"]
  const cells = rows.map((r) => [
    r.scenario,
    r.healed ? "yes" : "no",
    r.ms !== undefined ? `${(r.ms / 1000).toFixed(2)} s` : "-",
    r.dataLost.length === 0 ? "no" : `yes (${r.dataLost.length})`
  ])
  const widths = header.map((h, k) => Math.max(h.length, ...cells.map((c) => c[k]!.length)))
  const line = (row: ReadonlyArray<string>) =>
    row
      .map((c, k) => c.padEnd(widths[k]!))
      .join("  ")
      .trimEnd()
  log()
  log(line(header))
  log(line(widths.map((w) => "-".repeat(w))))
  for (const c of cells) log(line(c))
  const ok =
    rows.length === (only === undefined ? 10 : rows.length) &&
    rows.every((r) => r.healed && r.dataLost.length === 0)
  log()
  log(ok ? `all ${rows.length} scenarios healed, no data lost` : "FAIL: a scenario did not heal or lost data")
  return ok
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (e) => {
    process.stderr.write(`chaos: ${e instanceof Error ? e.message : String(e)}\n`)
    process.exit(1)
  }
)
