/**
 * How `plan()` scales with the size of the catalog: N = 10, 100, 1000 installed apps, planned
 * against (a) a fresh node (Observed.empty) and (b) a node in steady state, whose snapshot matches
 * Desired exactly (so the plan must be empty; the run fails otherwise).
 *
 * Only `plan()` is timed. The catalog goes through `catalogFromSources` (the same checks as a
 * real catalog directory) and Desired is derived before timing starts.
 *
 * Goal: t(1000)/t(100) <= 12 in both scenarios (close to linear), 1,000 apps in a few ms.
 * A baseline measured in the same run, the minimal hash join of Desired against the snapshot,
 * shows what the memory hierarchy alone does to that ratio on this machine (at 1,000 apps the
 * data no longer fits in the caches); a ratio above 12 still passes when plan() grows no
 * faster than that baseline (within x1.2). Exits non-zero when the steady state plan is not
 * empty, the fresh plan is incomplete, or plan() grows faster than that.
 *
 *   pnpm bench:plan        (or: node packages/core/bench/plan.bench.ts)
 */
import { availableParallelism, cpus } from "node:os"
import * as Redacted from "effect/Redacted"
import * as Yaml from "yaml"
import { renderText } from "../src/Action.ts"
import { catalogFromSources, type ManifestSource } from "../src/Catalog.ts"
import * as Desired from "../src/Desired.ts"
import { sha256Hex } from "../src/Hash.ts"
import type { AppManifest, ContainerManifest, RenderedFile } from "../src/Manifest.ts"
import * as Observed from "../src/Observed.ts"
import { plan } from "../src/Plan.ts"
import { RPC_PASSWORD_SECRET } from "../src/Render/Network.ts"

const SIZES = [10, 100, 1000] as const
const RATIO_LIMIT = 12
/** How much faster than the baseline plan() may grow before it counts as super-linear. */
const EXCESS_LIMIT = 1.2
const SAMPLE_TARGET_MS = 5
const MIN_SAMPLES = 30
const ROUNDS = 10
const WARMUP_MS = 150
const NOW = Date.UTC(2026, 0, 15, 12, 0, 0)
const STARTED_AT_MS = NOW - 6 * 3_600_000

// ---------------------------------------------------------------------------------------------
// A synthetic catalog: app-0000 provides bitcoind; every other app depends on it and on its
// parent in a tree of fan-out 3. Apps have 1-3 containers (a daemon, an API, a web UI) with
// ports, mounts, health checks and in-app start order; half render a bitcoin.conf (the
// bitcoin-conf renderer, which needs the bitcoin-rpc-password secret), some consumed across apps.

const appId = (i: number) => `app-${String(i).padStart(4, "0")}`
const networks = ["mainnet", "testnet", "signet", "regtest"] as const
const restart = { policy: "always", backoffInitial: "10s", backoffMax: "5m", resetAfter: "10m" } as const

const manifestFor = (i: number, nextPort: () => number): AppManifest => {
  const id = appId(i)
  const parent = i === 0 ? undefined : Math.floor((i - 1) / 3)
  const containerCount = 1 + (i % 3)
  const tokenSecret = i % 4 === 3 ? `${id}-token` : undefined
  const mountsRpcPassword = i % 4 === 1

  const daemon: ContainerManifest = {
    name: id,
    ...(i % 10 === 9
      ? { build: { context: "." } }
      : { image: `docker.io/archybench/${id}:v1.${i % 50}.${i % 7}` }),
    command: [`--datadir=/data`, `--listen=0.0.0.0:${9000 + (i % 100)}`, "--log-level=info"],
    env: { APP_ID: id, BITCOIND_HOST: "host.archipelago", BITCOIND_RPC_PORT: "8332", LOG_FORMAT: "json" },
    ports: [
      { host: nextPort(), container: 9000 + (i % 100) },
      ...(i % 2 === 0 ? [{ host: nextPort(), container: 9100, public: true }] : [])
    ],
    mounts: [
      { source: "data", target: "/data" },
      ...(i % 2 === 0 ? [{ source: "conf", target: "/etc/bench", readOnly: true }] : [])
    ],
    secrets: [
      ...(mountsRpcPassword ? [{ name: RPC_PASSWORD_SECRET }] : []),
      ...(tokenSecret !== undefined ? [{ name: tokenSecret, target: "/run/secrets/token" }] : [])
    ],
    health: {
      command: ["/bin/healthcheck", "--port", String(9000 + (i % 100))],
      interval: "30s",
      timeout: "10s",
      startPeriod: "5m",
      retries: 3
    },
    stopTimeout: i === 0 ? "600s" : "120s",
    restart
  }
  const api: ContainerManifest = {
    name: `${id}-api`,
    image: "docker.io/archybench/api-runtime:v2.3.1",
    command: ["serve", "--upstream", `http://${id}:${9000 + (i % 100)}`],
    env: { UPSTREAM: id, PORT: "3000" },
    ports: [{ host: nextPort(), container: 3000 }],
    mounts: [{ source: "api", target: "/var/lib/api" }],
    dependsOn: [{ container: id, condition: "healthy" }],
    health: { command: ["wget", "-qO-", "http://127.0.0.1:3000/health"], interval: "15s", retries: 5 },
    stopTimeout: "30s",
    restart
  }
  const ui: ContainerManifest = {
    name: `${id}-ui`,
    image: "docker.io/library/nginx:1.27.3-alpine",
    ports: [{ host: nextPort(), container: 80, public: true }],
    mounts: [
      { source: "ui/html", target: "/usr/share/nginx/html", readOnly: true },
      { source: "ui/nginx.conf", target: "/etc/nginx/conf.d/default.conf", readOnly: true }
    ],
    dependsOn: [{ container: `${id}-api` }],
    health: { command: ["wget", "-qO-", "http://127.0.0.1/"], interval: "30s" },
    stopTimeout: "10s",
    restart,
    capAdd: ["CHOWN", "NET_BIND_SERVICE", "SETGID", "SETUID"]
  }

  const network = networks[i % networks.length]!
  const files: Array<RenderedFile> = [
    ...(i % 2 === 0
      ? [
          {
            path: "conf/bitcoin.conf",
            renderer: "bitcoin-conf",
            params: {
              network,
              rpcUser: `bench${i}`,
              dbcache: 300 + (i % 8) * 50,
              zmq: i % 4 === 0,
              ...(i % 3 === 0 ? { prune: 550 } : { txindex: true })
            },
            mode: i % 4 === 0 ? "0640" : "0600",
            ...(i % 8 === 0 ? { owner: "1000:1000" } : {}),
            consumers: containerCount >= 2 ? [id, `${id}-api`] : [id]
          }
        ]
      : []),
    // A second config read by this app and by its parent's daemon (consumers cross apps).
    ...(i % 5 === 0 && parent !== undefined
      ? [
          {
            path: "conf/peer-bitcoin.conf",
            renderer: "bitcoin-conf",
            params: { network: "regtest", rpcUser: `peer${i}`, zmq: false },
            consumers: [id, appId(parent)]
          }
        ]
      : [])
  ]
  const secrets = [
    ...(files.length > 0 || mountsRpcPassword ? [RPC_PASSWORD_SECRET] : []),
    ...(tokenSecret !== undefined ? [tokenSecret] : [])
  ]

  return {
    id,
    name: `Bench app ${i}`,
    version: `1.${i % 50}.${i % 7}`,
    description: `Synthetic app ${i} for the plan() benchmark.`,
    category: i === 0 ? "bitcoin" : i % 3 === 0 ? "lightning" : "explorer",
    defaultInstalled: true,
    ...(i === 0 ? { provides: ["bitcoind"], conflicts: ["bitcoin-core"] } : {}),
    ...(parent !== undefined
      ? {
          dependencies: [
            { app: "bitcoind", condition: "healthy" as const },
            ...(parent > 0 ? [{ app: appId(parent) }] : [])
          ]
        }
      : {}),
    ...(secrets.length > 0 ? { secrets } : {}),
    ...(files.length > 0 ? { files } : {}),
    containers: containerCount === 1 ? [daemon] : containerCount === 2 ? [daemon, api] : [daemon, api, ui]
  }
}

const catalogSources = (n: number): ReadonlyArray<ManifestSource> => {
  let port = 20_000
  const nextPort = () => port++
  return Array.from({ length: n }, (_, i) => {
    const id = appId(i)
    const dir = `/bench/apps/${id}`
    return { file: `${dir}/manifest.yml`, dir, dirName: id, text: Yaml.stringify(manifestFor(i, nextPort)) }
  })
}

// ---------------------------------------------------------------------------------------------
// Observed snapshots.

/**
 * What podman and the disk would report once everything in `desired` has been carried out.
 * Containers are listed in creation order, as podman lists them; their ids are random hex.
 */
const steadyObserved = (desired: Desired.Desired): Observed.Observed => ({
  containers: desired.apps.flatMap((app) =>
    app.containers.map(
      (c): Observed.ObservedContainer => ({
        id: sha256Hex(`container ${c.name}`),
        name: c.name,
        image: c.spec.image,
        labels: {
          [Observed.labels.app]: c.app,
          [Observed.labels.container]: c.name,
          [Observed.labels.specHash]: c.specHash
        },
        state: "running",
        startedAtMs: STARTED_AT_MS,
        health: "healthy"
      })
    )
  ),
  images: desired.images.map((source) => ({
    id: sha256Hex(`image ${source.ref}`),
    names: [source.ref],
    digest: `sha256:${sha256Hex(`digest ${source.ref}`)}`
  })),
  networks: [
    { name: "podman", subnet: "10.88.0.0/16", gateway: "10.88.0.1" },
    { name: desired.network.name, subnet: desired.network.subnet, gateway: desired.network.gateway }
  ],
  secrets: [...desired.secrets],
  files: desired.apps.flatMap((app) =>
    app.files.map((f): Observed.ObservedFile => {
      if (f.sha256 === undefined) throw new Error(`${f.path} was not rendered: ${f.renderError ?? "?"}`)
      return {
        path: f.path,
        sha256: f.sha256,
        mode: 0o100000 | f.mode,
        ...(f.owner !== undefined ? { owner: f.owner } : {}),
        mtimeMs: STARTED_AT_MS - 60_000
      }
    })
  ),
  backoff: []
})

// ---------------------------------------------------------------------------------------------
// Setup (untimed) and sanity checks that keep the numbers meaningful.

interface Case {
  readonly n: number
  readonly scenario: "fresh" | "steady" | "join"
  readonly desired: Desired.Desired
  readonly observed: Observed.Observed
  readonly containers: number
  readonly files: number
  readonly actions: number
  iterations: number
  readonly samples: Array<number>
}

const fail = (message: string): never => {
  process.stderr.write(`FAIL: ${message}\n`)
  process.exit(1)
}

const secrets = new Map([[RPC_PASSWORD_SECRET, Redacted.make("bench rpc password 6c1f0e9a2d")]])

const cases: Array<Case> = SIZES.flatMap((n): Array<Case> => {
  const catalog = catalogFromSources(catalogSources(n))
  if (catalog.issues.length > 0 || catalog.apps.length !== n) {
    fail(
      `the synthetic catalog for N=${n} has ${catalog.apps.length} valid apps and issues:\n` +
        catalog.issues
          .slice(0, 10)
          .map((i) => `  ${i.file}: ${i.path}: ${i.message}`)
          .join("\n")
    )
  }
  const desired = Desired.make({
    catalog,
    node: Desired.defaultNodeConfig,
    selection: Desired.defaultSelection(catalog),
    secrets
  })
  const containers = desired.apps.reduce((sum, a) => sum + a.containers.length, 0)
  const files = desired.apps.reduce((sum, a) => sum + a.files.length, 0)
  if (desired.apps.length !== n || desired.apps.some((a) => a.blocked !== undefined)) {
    fail(`Desired for N=${n} has ${desired.apps.length} apps, or some are blocked`)
  }

  const fresh = plan(desired, Observed.empty, { now: NOW })
  const count = (tag: string) => fresh.filter((a) => a._tag === tag).length
  if (count("Create") !== containers || count("Start") !== containers || count("WriteFile") !== files) {
    fail(
      `fresh plan for N=${n}: ${count("Create")} creates, ${count("Start")} starts, ` +
        `${count("WriteFile")} file writes; expected ${containers}, ${containers}, ${files}`
    )
  }

  // Through JSON and the Observed schema, as `archy plan --observed FILE` reads a snapshot: the
  // strings are podman's, not the very objects Desired holds.
  const decoded = Observed.decodeObservedJson(JSON.stringify(steadyObserved(desired)))
  if (decoded._tag === "Failure")
    return fail(`the steady state snapshot for N=${n} does not decode: ${decoded.failure}`)
  const observed = decoded.success
  const steady = plan(desired, observed, { now: NOW })
  if (steady.length !== 0) {
    fail(
      `steady state for N=${n} should plan nothing, got ${steady.length} actions:\n` +
        renderText(steady.slice(0, 10))
    )
  }

  const base = { n, desired, containers, files, iterations: 1 }
  return [
    { ...base, scenario: "fresh", observed: Observed.empty, actions: fresh.length, samples: [] },
    { ...base, scenario: "steady", observed, actions: 0, samples: [] },
    { ...base, scenario: "join", observed, actions: 0, samples: [] }
  ]
})

// ---------------------------------------------------------------------------------------------
// Timing: warm up, size the batches, then interleave the cases round by round so that a change
// in machine load affects every N alike and the ratios stay comparable.

/**
 * The baseline: the least work any planner must do on a steady node, a hash join of Desired
 * against the snapshot (look up each container by label and compare its spec hash and state,
 * look up each file and compare its hash). It touches the same memory as plan() does, so its
 * own t(1000)/t(100) shows what the memory hierarchy alone does to the ratio on this machine.
 */
const minimalJoin = (desired: Desired.Desired, observed: Observed.Observed): number => {
  const byName = new Map<string, Observed.ObservedContainer>()
  for (const c of observed.containers) {
    const name = c.labels[Observed.labels.container]
    if (name !== undefined) byName.set(name, c)
  }
  const files = new Map<string, Observed.ObservedFile>()
  for (const f of observed.files) files.set(f.path, f)
  let changes = 0
  for (const app of desired.apps) {
    for (const f of app.files) if (files.get(f.path)?.sha256 !== f.sha256) changes++
    for (const c of app.containers) {
      const o = byName.get(c.name)
      if (o?.labels[Observed.labels.specHash] !== c.specHash || o.state !== "running") changes++
    }
  }
  return changes
}

let sink = 0
const timeBatch = (c: Case, iterations: number): number => {
  const t0 = performance.now()
  if (c.scenario === "join") for (let k = 0; k < iterations; k++) sink += minimalJoin(c.desired, c.observed)
  else for (let k = 0; k < iterations; k++) sink += plan(c.desired, c.observed, { now: NOW }).length
  return performance.now() - t0
}

for (const c of cases) {
  const until = performance.now() + WARMUP_MS
  for (let k = 0; k < 10 || performance.now() < until; k++) timeBatch(c, 1)
}
for (const c of cases) {
  let iterations = 1
  for (let ms = timeBatch(c, iterations); ms < SAMPLE_TARGET_MS; ms = timeBatch(c, iterations)) {
    iterations =
      ms <= 0 ? iterations * 10 : Math.max(iterations + 1, Math.ceil(iterations * (SAMPLE_TARGET_MS / ms)))
  }
  c.iterations = iterations
}
const perRound = Math.ceil(MIN_SAMPLES / ROUNDS) + 1
for (let round = 0; round < ROUNDS; round++) {
  for (const c of cases) {
    for (let s = 0; s < perRound; s++) c.samples.push(timeBatch(c, c.iterations) / c.iterations)
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

const quantile = (xs: ReadonlyArray<number>, q: number): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const at = (sorted.length - 1) * q
  const lo = Math.floor(at)
  const hi = Math.ceil(at)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo)
}
const median = (c: Case) => quantile(c.samples, 0.5)
const fmt = (ms: number): string => (ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(3)} ms`)
const cpuModel = cpus()[0]?.model.trim() ?? "unknown cpu"

const out: Array<string> = []
out.push(`plan() benchmark  node ${process.version}  ${availableParallelism()} cores (${cpuModel})`)
out.push(
  `goal: t(1000)/t(100) <= ${RATIO_LIMIT} in both scenarios (close to linear); 1,000 apps planned in a few ms`
)
out.push("")
const header = ["apps", "ctrs", "files", "scenario", "actions", "iter x samples", "median", "p10", "p90"]
const rows = cases.map((c) => [
  String(c.n),
  String(c.containers),
  String(c.files),
  c.scenario,
  String(c.actions),
  `${c.iterations} x ${c.samples.length}`,
  fmt(median(c)),
  fmt(quantile(c.samples, 0.1)),
  fmt(quantile(c.samples, 0.9))
])
const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)))
const line = (cells: ReadonlyArray<string>) =>
  cells.map((cell, k) => (k < 4 ? cell.padEnd(widths[k]!) : cell.padStart(widths[k]!))).join("  ")
out.push(line(header))
for (const r of rows) out.push(line(r))
out.push("")

const t = (scenario: Case["scenario"], n: number) =>
  median(cases.find((c) => c.n === n && c.scenario === scenario)!)
const ratio = (scenario: Case["scenario"]) => t(scenario, 1000) / t(scenario, 100)
const joinRatio = ratio("join")
out.push(
  `join    t(1000)/t(100) = ${joinRatio.toFixed(2).padStart(5)}  (baseline: the minimal hash join over the same data)`
)
let failed = false
for (const scenario of ["fresh", "steady"] as const) {
  const big = ratio(scenario)
  const small = t(scenario, 100) / t(scenario, 10)
  // Linear means: within the limit, or growing no faster than the baseline (the excess over
  // the limit is then the memory hierarchy, which no planner avoids).
  const excess = big / Math.max(joinRatio, 10)
  const ok = big <= RATIO_LIMIT || excess <= EXCESS_LIMIT
  if (!ok) failed = true
  out.push(
    `${scenario.padEnd(6)}  t(1000)/t(100) = ${big.toFixed(2).padStart(5)}  ` +
      `t(100)/t(10) = ${small.toFixed(2).padStart(5)}  vs baseline x${excess.toFixed(2)}  ` +
      `t(1000) = ${fmt(t(scenario, 1000))}  ${ok ? "PASS" : "FAIL"}`
  )
}
out.push(
  failed
    ? "FAIL: plan() grows faster than linear"
    : `PASS (ratio <= ${RATIO_LIMIT}, or within x${EXCESS_LIMIT} of the baseline's own ratio)`
)
process.stdout.write(`${out.join("\n")}\n`)
if (sink < 0) process.stdout.write("\n")
if (failed) process.exitCode = 1
