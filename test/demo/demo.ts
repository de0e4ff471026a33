/**
 * The demo (`bin/demo`): the daemon on real podman, healing a node it has never seen.
 *
 * It runs on a podman of its own (a private store and socket in a temporary directory), so the
 * machine's other containers are never touched, starts `archy daemon` on the local test catalog
 * (test/fixtures/apps: a bitcoind stand-in with a rendered bitcoin.conf and a health check, an
 * lnd stand-in that waits for it, a UI built on the spot, a two-container worker), prints the
 * status table, then breaks the node three ways (kill -9 of a container's process, `podman rm
 * -f`, `podman stop`) and prints how long the daemon took to heal each. Everything is removed
 * at the end, also on Ctrl-C.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fixtureContainers } from "../fixtures/fixtures.ts"
import {
  copyCatalog,
  type DaemonProcess,
  freePort,
  makePrivatePodman,
  type PrivatePodman,
  startDaemon
} from "../integration/support/PrivatePodman.ts"

const repoRoot = new URL("../../", import.meta.url).pathname
const image = "localhost/archy-test/busybox:1"

const say = (line = "") => process.stdout.write(`${line}\n`)
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const stateOf = (
  pp: PrivatePodman,
  name: string
): { readonly id: string; readonly state: string } | undefined => {
  const r = pp.cli(["inspect", "--format", "{{.Id}} {{.State.Status}} {{.State.Pid}}", name])
  if (r.status !== 0) return undefined
  const [id, state] = r.stdout.trim().split(" ")
  return { id: id!, state: state! }
}

/** Polls until every named container runs (and, for `changedFrom`, is a new one): the time. */
const untilRunning = async (
  pp: PrivatePodman,
  names: ReadonlyArray<string>,
  since: number,
  limitMs: number,
  changedFrom?: string
): Promise<number> => {
  for (;;) {
    const all = names.every((n) => {
      const s = stateOf(pp, n)
      return s?.state === "running" && (changedFrom === undefined || s.id !== changedFrom)
    })
    if (all) return Date.now() - since
    if (Date.now() - since > limitMs)
      throw new Error(`${names.join(", ")} not running after ${seconds(limitMs)}`)
    await sleep(50)
  }
}

const statusTable = async (d: DaemonProcess) => {
  const answer = await d.rpc("package.status")
  const result =
    (
      answer.json as {
        readonly result?: ReadonlyArray<{
          readonly id: string
          readonly containers: ReadonlyArray<{
            readonly name: string
            readonly state: string
            readonly health?: string
          }>
        }>
      }
    ).result ?? []
  say(`  ${"APP".padEnd(12)} ${"CONTAINER".padEnd(22)} ${"STATE".padEnd(9)} HEALTH`)
  for (const app of result) {
    for (const c of app.containers)
      say(`  ${app.id.padEnd(12)} ${c.name.padEnd(22)} ${c.state.padEnd(9)} ${c.health ?? "-"}`)
  }
}

const main = async () => {
  const pp = makePrivatePodman({ prefix: "archy-demo-" })
  const work = mkdtempSync(join(tmpdir(), "archy-demo-state-"))
  let daemon: DaemonProcess | undefined
  let cleaned = false
  const cleanup = async () => {
    if (cleaned) return
    cleaned = true
    daemon?.kill()
    const left = await pp.dispose()
    rmSync(work, { recursive: true, force: true })
    if (left.length > 0) say(`could not undo: ${left.join("; ")}`)
  }
  process.once("SIGINT", () => void cleanup().then(() => process.exit(130)))
  try {
    say("Archipelago demo: the archy daemon on real podman, on a podman store of its own.")
    say()
    pp.copyImages([image])
    pp.watchNetwork("archipelago")
    await pp.startService()
    const apps = join(work, "catalog")
    await copyCatalog(join(repoRoot, "test/fixtures/apps"), apps)
    const port = await freePort()
    const started = Date.now()
    daemon = await startDaemon({
      appsDir: apps,
      stateDir: join(work, "state"),
      socketPath: pp.socketPath,
      port,
      interval: 30
    })
    say(
      `1. archy daemon started (API on 127.0.0.1:${port}); it finds an empty node and builds it from the manifests`
    )
    const upMs = await untilRunning(pp, fixtureContainers, started, 120_000)
    say(
      `   all ${fixtureContainers.length} containers running after ${seconds(upMs)} (lnd waited for bitcoind's health check)`
    )
    say()
    await statusTable(daemon)
    say()
    say("2. breaking the node; nobody touches it afterwards")
    const faults: ReadonlyArray<{
      readonly what: string
      readonly name: string
      readonly inject: () => void
      readonly newId: boolean
    }> = [
      {
        what: "kill -9 of its main process",
        name: "archy-fx-worker",
        newId: false,
        inject: () => {
          const pid = Number(pp.cliOk(["inspect", "--format", "{{.State.Pid}}", "archy-fx-worker"]).trim())
          process.kill(pid, "SIGKILL")
        }
      },
      {
        what: "podman rm -f",
        name: "archy-fx-ui",
        newId: true,
        inject: () => void pp.cliOk(["rm", "-f", "-t", "0", "archy-fx-ui"])
      },
      {
        what: "podman stop",
        name: "archy-fx-worker-queue",
        newId: false,
        inject: () => void pp.cliOk(["stop", "-t", "0", "archy-fx-worker-queue"])
      }
    ]
    for (const f of faults) {
      await sleep(1500)
      const before = stateOf(pp, f.name)?.id
      const t0 = Date.now()
      f.inject()
      const ms = await untilRunning(pp, [f.name], t0, 60_000, f.newId ? before : undefined)
      say(`   ${f.what.padEnd(28)} ${f.name.padEnd(22)} running again after ${seconds(ms)}`)
    }
    say()
    await statusTable(daemon)
    say()
    process.kill(daemon.pid, "SIGTERM")
    const exit = await daemon.exit
    say(`3. SIGTERM: the daemon stopped cleanly (exit code ${exit.code ?? exit.signal})`)
  } finally {
    await cleanup()
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`)
  process.exitCode = 1
})
