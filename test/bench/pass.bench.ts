/**
 * What one steady-state reconcile pass costs on a real node, against the floor and against the
 * old way. 30 busybox containers (10 apps x 3, one app with a rendered bitcoin.conf) are brought
 * up by one `reconcileOnce` over the libpod adapter, a second pass must plan nothing, and then,
 * interleaved round by round after a warm-up:
 *
 *   (a) pass   one steady `reconcileOnce` (read secrets, derive Desired, observe podman, the
 *              files and the adoption records, plan; nothing to execute);
 *   (b) list   the bare `GET /v4.0.0/libpod/containers/json?all=true` on the same socket
 *              (node:http, body read, not parsed): the one podman call a pass cannot avoid;
 *   (c) naive  one `podman inspect NAME` process per container, one after another, as the old
 *              bash scripts observed the node.
 *
 * The pass includes the FM6 check (podman's state DB against storage's containers.json, read
 * as a file); its own cost is measured too, as (d), and any deeper look it takes counts as a call.
 *
 * Goals: exactly 1 podman call per steady pass; pass/list <= 1.5 (the engine's own work costs
 * less than half a list call); naive/pass >= 10. Exits 1 when a goal fails, or when the setup
 * does not reach a steady state.
 *
 * podman runs as a private `podman system service` with its own store (`--root`/`--runroot`
 * in the temp dir, the test image copied in; test/integration/support/PrivatePodman.ts): a pass
 * removes every container with our labels that its catalog does not name, so on the shared store
 * it would remove other catalogs' containers (and theirs ours). Networks are podman-wide: the
 * pass uses the `archipelago` network, and creates it only when it is missing (it is then
 * removed again at the end). Needs root, podman and the test image (`scripts/test-images.sh`).
 * Everything it creates is removed at the end, also on failure or Ctrl-C.
 *
 *   pnpm bench:pass        (or: node test/bench/pass.bench.ts)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import { availableParallelism, cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { renderText } from "@archy/core/Action"
import { loadCatalog } from "@archy/core/Catalog"
import type * as Desired from "@archy/core/Desired"
import { defaultNodeConfig } from "@archy/core/Desired"
import type { AppManifest } from "@archy/core/Manifest"
import { AdoptionStore } from "@archy/engine/AdoptionStore"
import { HealthBook } from "@archy/engine/Health"
import { type PassInput, planNow, reconcileOnce } from "@archy/engine/Reconciler"
import { SecretStore } from "@archy/engine/SecretStore"
import * as LibpodRuntime from "@archy/podman/LibpodRuntime"
import { PodmanRuntime } from "@archy/podman/PodmanRuntime"
import * as PodmanState from "@archy/podman/PodmanState"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import {
  makePrivatePodman,
  PodmanCommandError,
  type PrivatePodman,
  privatePodmanMissing
} from "../integration/support/PrivatePodman.ts"

const IMAGE = "localhost/archy-test/busybox:1"
const PREFIX = "archy-bench-"
const APPS = 10
const PER_APP = 3
const CONTAINERS = APPS * PER_APP
const LIST_PATH = "/v4.0.0/libpod/containers/json?all=true"

/** Rounds of (PER_ROUND passes and list calls, alternating, then one naive observe). */
const ROUNDS = 21
const PER_ROUND = 5
const WARMUP = { pass: 10, list: 10, naive: 2 }

const RATIO_LIMIT = 1.5
const SPEEDUP_GOAL = 10

class BenchError extends Error {}

const log = (line = "") => process.stdout.write(`${line}\n`)

// ---------------------------------------------------------------------------------------------
// podman

/** GET on the socket; resolves with the status and the body, and how long it took. */
const get = (
  socketPath: string,
  path: string,
  timeoutMs = 10_000
): Promise<{ readonly status: number; readonly body: string; readonly ms: number }> =>
  new Promise((resolve, reject) => {
    const t0 = performance.now()
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
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString("utf8"),
            ms: performance.now() - t0
          })
        )
        res.on("error", reject)
      }
    )
    req.on("timeout", () => req.destroy(new Error(`GET ${path} timed out`)))
    req.on("error", reject)
    req.end()
  })

// ---------------------------------------------------------------------------------------------
// The catalog: 10 apps of 3 containers. bench-app-01 renders a bitcoin.conf (so a pass reads a
// secret and stats and hashes a file) consumed by its first container. No ports, no health
// checks: only what a pass observes matters here.

const containerName = (n: number) => `${PREFIX}${String(n).padStart(2, "0")}`
const names = Array.from({ length: CONTAINERS }, (_, i) => containerName(i + 1))

const manifestFor = (a: number): AppManifest => {
  const id = `bench-app-${String(a).padStart(2, "0")}`
  const withFile = a === 1
  const containers = Array.from({ length: PER_APP }, (_, k) => {
    const name = containerName((a - 1) * PER_APP + k + 1)
    return {
      name,
      image: IMAGE,
      env: { BENCH_APP: id },
      stopTimeout: "1s",
      ...(withFile && k === 0 ? { mounts: [{ source: "data", target: "/data" }] } : {})
    }
  })
  return {
    id,
    name: `Bench app ${a}`,
    version: "1.0.0",
    description: "A steady-state pass benchmark app: busybox containers that only sleep.",
    category: "system",
    defaultInstalled: true,
    ...(withFile
      ? {
          secrets: ["bitcoin-rpc-password"],
          files: [
            {
              path: "data/bitcoin.conf",
              renderer: "bitcoin-conf",
              params: { network: "regtest", txindex: false, zmq: false, dbcache: 4 },
              mode: "0600",
              consumers: [containers[0]!.name]
            }
          ]
        }
      : {}),
    containers: [containers[0]!, ...containers.slice(1)]
  }
}

/** Writes `<dir>/<id>/manifest.yml` for every app (JSON is YAML). */
const writeCatalog = (dir: string): void => {
  for (let a = 1; a <= APPS; a++) {
    const manifest = manifestFor(a)
    mkdirSync(join(dir, manifest.id), { recursive: true })
    writeFileSync(join(dir, manifest.id, "manifest.yml"), `${JSON.stringify(manifest, null, 2)}\n`)
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics and the report.

const quantile = (xs: ReadonlyArray<number>, q: number): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const at = (sorted.length - 1) * q
  const lo = Math.floor(at)
  const hi = Math.ceil(at)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo)
}
const median = (xs: ReadonlyArray<number>) => quantile(xs, 0.5)
const fmt = (ms: number): string => (ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`)

// ---------------------------------------------------------------------------------------------
// The run.

let interrupted = false
const onSignal = () => {
  interrupted = true
}
const checkInterrupted = () => {
  if (interrupted) throw new BenchError("interrupted")
}

/** What teardown undoes; set as setup gets that far. */
interface Made {
  readonly work: string
  podman?: PrivatePodman
  runtime?: { readonly dispose: () => Promise<void> }
}

const run = async (made: Made): Promise<boolean> => {
  const { work } = made
  const stateDir = join(work, "state")
  const catalogDir = join(work, "catalog")
  mkdirSync(stateDir)
  writeCatalog(catalogDir)

  const podman = makePrivatePodman({ prefix: "archy-bench-pass-podman-" })
  made.podman = podman
  podman.copyImages([IMAGE])

  // The first pass creates it when it is missing; nothing used it before, so it goes again.
  podman.watchNetwork(defaultNodeConfig.network.name)

  checkInterrupted()
  await podman.startService()
  const { socketPath } = podman

  const runtime = ManagedRuntime.make(
    Layer.mergeAll(
      LibpodRuntime.layer({ socketPath }),
      PodmanState.layer({ socketPath }),
      SecretStore.layer(join(stateDir, "secrets")),
      AdoptionStore.layer(join(stateDir, "adopted.json")),
      HealthBook.layer
    ).pipe(Layer.provideMerge(NodeServices.layer))
  )
  made.runtime = runtime

  const catalog = await runtime.runPromise(loadCatalog(catalogDir))
  if (catalog.issues.length > 0 || catalog.apps.length !== APPS) {
    throw new BenchError(
      `the bench catalog has ${catalog.apps.length} valid apps; issues:\n` +
        catalog.issues.map((i) => `  ${i.file}: ${i.path}: ${i.message}`).join("\n")
    )
  }
  const node: Desired.NodeConfig = {
    ...defaultNodeConfig,
    dataRoot: join(stateDir, "apps"),
    secretsDir: join(stateDir, "secrets")
  }
  const input: PassInput = {
    catalog,
    node,
    selection: { installed: catalog.apps.map((a) => a.manifest.id), stopped: [] }
  }

  // --- setup: one pass brings everything up, the next plans nothing --------------------------

  const first = await runtime.runPromise(reconcileOnce(input))
  const notDone = first.filter((r) => r.outcome._tag !== "Done")
  if (notDone.length > 0) {
    throw new BenchError(
      `the first pass did not carry out everything:\n` +
        notDone.map((r) => `  ${r.action._tag} ${r.action.target}: ${JSON.stringify(r.outcome)}`).join("\n")
    )
  }
  const listed = await get(socketPath, LIST_PATH)
  const running = (
    JSON.parse(listed.body) as ReadonlyArray<{ Names?: ReadonlyArray<string>; State?: string }>
  )
    .filter((c) => c.State === "running")
    .flatMap((c) => c.Names ?? [])
  const down = names.filter((n) => !running.includes(n))
  if (down.length > 0) throw new BenchError(`after the first pass these are not running: ${down.join(", ")}`)

  const second = await runtime.runPromise(planNow(input))
  if (second.actions.length > 0) {
    throw new BenchError(`a second pass should plan nothing, it plans:\n${renderText(second.actions)}`)
  }
  const files = second.observed.files.length
  const secrets = second.observed.secrets.length
  if (files !== 1 || secrets !== 1) {
    throw new BenchError(`a pass should observe 1 file and 1 secret, it observes ${files} and ${secrets}`)
  }

  // --- the three measurements -----------------------------------------------------------------

  const steadyPass = Effect.gen(function* () {
    const podmanRuntime = yield* PodmanRuntime
    const state = yield* PodmanState.PodmanState
    const before = (yield* podmanRuntime.calls) + (yield* state.deepLooks)
    const t0 = performance.now()
    const reports = yield* reconcileOnce(input)
    const ms = performance.now() - t0
    const after = (yield* podmanRuntime.calls) + (yield* state.deepLooks)
    return { ms, calls: after - before, reports }
  })

  /** The FM6 check alone, against the pass's own list (what observe hands it). */
  const listedNow = (await runtime.runPromise(planNow(input))).observed.containers
  const stateCheck = Effect.gen(function* () {
    const state = yield* PodmanState.PodmanState
    const t0 = performance.now()
    const orphans = yield* state.orphans(listedNow, new Set(names))
    const ms = performance.now() - t0
    if (orphans.length > 0)
      return yield* Effect.die(
        new BenchError(`orphans on a healthy node: ${orphans.map((o) => o.name).join(", ")}`)
      )
    return ms
  })

  const samples = {
    pass: [] as Array<number>,
    list: [] as Array<number>,
    naive: [] as Array<number>,
    state: [] as Array<number>
  }
  const callsPerPass = new Set<number>()

  const measurePass = async (keep: boolean) => {
    const r = await runtime.runPromise(steadyPass)
    if (r.reports.length > 0) {
      throw new BenchError(
        `a steady pass carried out actions (did something change the node?):\n` +
          renderText(r.reports.map((x) => x.action))
      )
    }
    callsPerPass.add(r.calls)
    if (keep) samples.pass.push(r.ms)
  }
  const measureList = async (keep: boolean) => {
    const r = await get(socketPath, LIST_PATH)
    if (r.status !== 200)
      throw new BenchError(`GET ${LIST_PATH} answered ${r.status}: ${r.body.slice(0, 300)}`)
    if (keep) samples.list.push(r.ms)
  }
  const measureNaive = (keep: boolean) => {
    const t0 = performance.now()
    for (const name of names) podman.cliOk(["inspect", name])
    const ms = performance.now() - t0
    if (keep) samples.naive.push(ms)
  }

  for (let k = 0; k < Math.max(WARMUP.pass, WARMUP.list); k++) {
    if (k < WARMUP.pass) await measurePass(false)
    if (k < WARMUP.list) await measureList(false)
  }
  for (let k = 0; k < WARMUP.naive; k++) measureNaive(false)

  for (let round = 0; round < ROUNDS; round++) {
    checkInterrupted()
    for (let k = 0; k < PER_ROUND; k++) {
      // Alternate which goes first, so neither always follows the other.
      if ((round + k) % 2 === 0) {
        await measurePass(true)
        await measureList(true)
      } else {
        await measureList(true)
        await measurePass(true)
      }
    }
    measureNaive(true)
    for (let k = 0; k < PER_ROUND; k++) samples.state.push(await runtime.runPromise(stateCheck))
  }

  // --- report ---------------------------------------------------------------------------------

  const version = podman.cliOk(["version", "--format", "{{.Client.Version}}"]).trim()
  const cpuModel = cpus()[0]?.model.trim() ?? "unknown cpu"
  const pass = median(samples.pass)
  const list = median(samples.list)
  const naive = median(samples.naive)
  const ratio = pass / list
  const speedup = naive / pass
  const calls = [...callsPerPass].sort((a, b) => a - b)
  const callsOk = calls.length === 1 && calls[0] === 1
  const ratioOk = ratio <= RATIO_LIMIT
  const speedupOk = speedup >= SPEEDUP_GOAL

  log(
    `steady-state pass benchmark  node ${process.version}  podman ${version}  ` +
      `${availableParallelism()} cores (${cpuModel})`
  )
  log(
    `${CONTAINERS} running containers in ${APPS} apps, ${files} rendered file, ${secrets} secret; ` +
      `a private podman service with its own store`
  )
  log(
    `goal: 1 podman call per steady pass; pass <= ${RATIO_LIMIT} x the bare list call; ` +
      `>= ${SPEEDUP_GOAL}x faster than one podman inspect per container`
  )
  log()
  const header = ["measurement", "samples", "median", "p10", "p90"]
  const rows = [
    ["(a) pass   reconcileOnce, steady, libpod", samples.pass],
    ["(b) list   GET /libpod/containers/json?all=true", samples.list],
    [`(c) naive  podman inspect NAME x ${CONTAINERS}, sequential`, samples.naive],
    ["(d) FM6    state DB vs storage containers.json (in (a))", samples.state]
  ] as const
  const cells = rows.map(([label, xs]) => [
    label,
    String(xs.length),
    fmt(median(xs)),
    fmt(quantile(xs, 0.1)),
    fmt(quantile(xs, 0.9))
  ])
  const widths = header.map((h, k) => Math.max(h.length, ...cells.map((r) => r[k]!.length)))
  const line = (row: ReadonlyArray<string>) =>
    row.map((cell, k) => (k === 0 ? cell.padEnd(widths[k]!) : cell.padStart(widths[k]!))).join("  ")
  log(line(header))
  for (const row of cells) log(line(row))
  log()
  const verdict = (ok: boolean) => (ok ? "PASS" : "FAIL")
  log(
    `podman calls per steady pass  ${calls.join(", ")} (over ${samples.pass.length + WARMUP.pass} passes)  ` +
      `goal = 1     ${verdict(callsOk)}`
  )
  log(
    `pass / list                   ${ratio.toFixed(2)}  (pass - list = ${fmt(pass - list)})  ` +
      `goal <= ${RATIO_LIMIT}  ${verdict(ratioOk)}`
  )
  log(`naive / pass                  ${speedup.toFixed(1)}x  goal >= ${SPEEDUP_GOAL}x  ${verdict(speedupOk)}`)
  const ok = callsOk && ratioOk && speedupOk
  log(ok ? "PASS" : "FAIL: a goal was missed")
  return ok
}

/** Undoes what setup made, in order; a failing step does not stop the others. */
const teardown = async (made: Made): Promise<boolean> => {
  let ok = true
  const step = async (what: string, f: () => Promise<void> | void) => {
    try {
      await f()
    } catch (e) {
      ok = false
      process.stderr.write(`teardown: ${what}: ${e instanceof Error ? e.message : String(e)}\n`)
    }
  }
  if (made.runtime !== undefined) await step("runtime", made.runtime.dispose)
  if (made.podman !== undefined) {
    // Every container in the private store, the service, the network if this run made it.
    const problems = await made.podman.dispose()
    if (problems.length > 0) {
      ok = false
      for (const p of problems) process.stderr.write(`teardown: ${p}\n`)
    }
  }
  await step("temp dir", () => {
    rmSync(made.work, { recursive: true, force: true })
  })
  return ok
}

const main = async (): Promise<number> => {
  const why = privatePodmanMissing([IMAGE])
  if (why !== undefined) {
    process.stderr.write(`cannot run the pass benchmark: ${why}\n`)
    return 1
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  const work = mkdtempSync(join(tmpdir(), "archy-bench-pass-"))
  const made: Made = { work }
  let ok = false
  try {
    ok = await run(made)
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e)
    process.stderr.write(interrupted ? "interrupted; cleaning up\n" : `FAIL: ${message}\n`)
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
