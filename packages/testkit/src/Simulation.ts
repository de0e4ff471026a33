/**
 * Deterministic simulation of one node: the real daemon (`Daemon.make`: its boot pass, timer,
 * event-driven passes, health checks, crash backoff, reconciler, secret store, adoption records
 * and atomic writes) over a fake podman and an in-memory disk, all time from a `TestClock` and
 * all chance from one seeded PRNG. Same seed, same run, byte for byte.
 *
 * A run has two phases, as TigerBeetle's VOPR does:
 *   - safety: faults on (see `Faults.sites`), the world misbehaving between steps (containers
 *     die, strays appear), the daemon crashing and restarting with its memory gone; the
 *     invariants (`Invariants.check`) hold after every one-second step;
 *   - liveness: faults off; the node must converge (every wanted container running and current,
 *     a pass that plans nothing) within a bounded number of passes.
 *
 * It owns the run loop, the daemon's incarnations and the trace; the fakes own their models.
 */
import { type Catalog, loadCatalog } from "@archy/core/Catalog"
import * as Desired from "@archy/core/Desired"
import { labels } from "@archy/core/Observed"
import * as Daemon from "@archy/daemon/Daemon"
import { servicesLayer } from "@archy/daemon/main"
import { HostDirectories } from "@archy/engine/Directories"
import { SecretStore } from "@archy/engine/SecretStore"
import { PodmanRuntime, type RuntimeEvent } from "@archy/podman/PodmanRuntime"
import { PodmanState } from "@archy/podman/PodmanState"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Path from "effect/Path"
import * as PubSub from "effect/PubSub"
import * as Scope from "effect/Scope"
import { TestClock } from "effect/testing"
import * as FakePodman from "./FakePodman.ts"
import * as Faults from "./Faults.ts"
import * as MemoryDirectories from "./HostDirectories.ts"
import * as Invariants from "./Invariants.ts"
import * as MemoryFs from "./MemoryFileSystem.ts"
import * as Prng from "./Prng.ts"

/** One app's manifest, as read from a catalog directory. */
export interface ManifestText {
  readonly id: string
  readonly text: string
  /** Files beside the manifest (templates, build contexts), relative to the app's directory. */
  readonly files?: ReadonlyArray<{ readonly path: string; readonly text: string }>
}

/**
 * `atomic` is the engine as it is. `in-place-writes` is a deliberately broken variant whose file
 * writes land straight in the target (what a naive executor does): the simulation must catch it.
 */
export type Variant = "atomic" | "in-place-writes"

export interface SimConfig {
  readonly seed: bigint
  readonly manifests: ReadonlyArray<ManifestText>
  /** Seconds of the safety phase (one step each). */
  readonly safetySeconds?: number
  /** The most passes the liveness phase may take to converge. */
  readonly livenessPasses?: number
  /** The most seconds the liveness phase may take (backoffs must run out in it). */
  readonly livenessSeconds?: number
  readonly variant?: Variant
  /** Fault sites never switched on in this run. */
  readonly exclude?: ReadonlyArray<Faults.Site>
}

export interface SimResult {
  readonly seed: bigint
  readonly ok: boolean
  readonly violation?: Invariants.Violation & { readonly atMs: number; readonly phase: "safety" | "liveness" }
  readonly trace: ReadonlyArray<string>
  readonly activeFaults: ReadonlyArray<Faults.Site>
  readonly fired: ReadonlyMap<Faults.Site, number>
  readonly crashes: number
  readonly passes: number
  readonly livenessPasses: number
}

const root = "/sim"
const appsDir = `${root}/apps`
const stateDir = `${root}/state`
/** A fixed epoch, so times in the trace read like a day on a node. */
const epochMs = Date.UTC(2026, 0, 1)

export const nodeConfig: Desired.NodeConfig = {
  ...Desired.defaultNodeConfig,
  dataRoot: `${stateDir}/apps`,
  secretsDir: `${stateDir}/secrets`
}

const daemonConfig: Daemon.DaemonConfig = {
  appsDir,
  node: nodeConfig,
  interval: Duration.seconds(30),
  debounce: Duration.millis(300),
  healthTick: Duration.seconds(1),
  events: true
}

const mutatingFs: ReadonlySet<MemoryFs.FsOp> = new Set([
  "makeDirectory",
  "open",
  "write",
  "sync",
  "chmod",
  "chown",
  "rename",
  "remove"
])

const tmpName = /^(.*)\/\.([^/]+)\.archy-tmp-\d+$/

/** The broken variant: a write to the temporary file goes to the target, the rename does nothing. */
const inPlaceWrites = (fs: FileSystem.FileSystem): FileSystem.FileSystem => ({
  ...fs,
  open: (path, options) => {
    const m = tmpName.exec(path)
    return fs.open(m === null ? path : `${m[1]}/${m[2]}`, options)
  },
  chmod: (path, mode) => {
    const m = tmpName.exec(path)
    return fs.chmod(m === null ? path : `${m[1]}/${m[2]}`, mode)
  },
  rename: (from, to) => (tmpName.test(from) ? Effect.void : fs.rename(from, to)),
  remove: (path, options) => (tmpName.test(path) ? Effect.void : fs.remove(path, options))
})

/** Stray containers' images: one the manifests use (adoptable as is) and one they do not. */
const foreignImage = "docker.io/library/debian:12"

const stamp = (ms: number) => ((ms - epochMs) / 1000).toFixed(3).padStart(9)

/** One line of the trace: the seconds since the run began, then what happened. */
const traceLine = (ms: number, line: string) =>
  // The temporary file's name carries the pid: not part of what a seed decides.
  `${stamp(ms)} ${line.replace(/archy-tmp-\d+/g, "archy-tmp-PID")}`

/**
 * Whether the node is where its manifests want it: every wanted container exists with the current
 * spec (by its label, or its adoption record) and runs, except one its restart policy lets rest
 * (exited 0 under on-failure, any exit under never) and those that wait on such a one; and the
 * last pass planned nothing but those waits.
 */
const settled = (
  desired: Desired.Desired,
  world: FakePodman.World,
  adopted: Readonly<Record<string, { readonly specHash: string }>>,
  lastPass: ReadonlyArray<{ readonly action: { readonly _tag: string; readonly target: string } }>
): string | undefined => {
  const resting = new Set<string>()
  for (const app of desired.apps) {
    for (const want of app.containers) {
      const c = world.containers.find((x) => x.name === want.name && !x.hidden)
      const policy = want.restart?.policy ?? "always"
      const mayRest = (x: FakePodman.FakeContainer) =>
        (x.state === "exited" || x.state === "stopped") &&
        (policy === "never" || (policy === "on-failure" && x.exitCode === 0))
      if (c !== undefined && mayRest(c)) {
        resting.add(want.name)
        continue
      }
      if (want.waitsFor.some((g) => resting.has(g.container))) {
        resting.add(want.name)
        continue
      }
      if (c === undefined) return `${want.name} does not exist`
      const specHash = c.labels[labels.specHash] ?? adopted[c.id]?.specHash
      if (specHash !== want.specHash)
        return `${want.name} has spec ${specHash ?? "none"}, want ${want.specHash}`
      if (want.shouldRun && c.state !== "running") return `${want.name} is ${c.state}`
    }
  }
  const pending = lastPass.filter(
    (r) => r.action._tag !== "Wait" || !resting.has(r.action.target.replace(/^container:/, ""))
  )
  return pending.length === 0
    ? undefined
    : `the last pass planned ${pending.map((r) => `${r.action._tag} ${r.action.target}`).join(", ")}`
}

/** Runs one seed: safety, then liveness. Never fails: a violation is in the result. */
export const run = (config: SimConfig): Effect.Effect<SimResult> =>
  Effect.suspend(() => {
    const trace: Array<string> = []
    const logs: Array<string> = []
    // Every log line is kept for the leak check; the daemon's own messages also go to the trace.
    const capture = Logger.make((options) => {
      logs.push(Logger.formatLogFmt.log(options))
      if (LogLevel.isGreaterThanOrEqualTo(options.logLevel, "Info")) {
        const message = Array.isArray(options.message) ? options.message.join(" ") : String(options.message)
        trace.push(traceLine(options.date.getTime(), `daemon: ${message.split("\n")[0]!.slice(0, 240)}`))
      }
    })
    return runWith(config, trace, logs).pipe(
      // TestClock waits for the fibers a tick wakes to settle, but by default only one second of real
      // time: on a busy machine a pass outlasts that and the run would depend on the load.
      Effect.provide(
        Layer.mergeAll(TestClock.layer({ warningDelay: Duration.minutes(10) }), Logger.layer([capture]))
      )
    )
  })

const runWith = (config: SimConfig, trace: Array<string>, logs: Array<string>) =>
  Effect.gen(function* () {
    const prng = Prng.make(config.seed)
    const faults = Faults.make(prng, config.exclude !== undefined ? { exclude: config.exclude } : {})
    const clock = yield* TestClock.testClockWith(Effect.succeed)
    yield* TestClock.setTime(epochMs)
    const tr = (line: string) => trace.push(traceLine(clock.currentTimeMillisUnsafe(), line))
    tr(
      `SEED=${config.seed} variant=${config.variant ?? "atomic"} faults=${faults.active.join(",") || "none"}`
    )

    const world = FakePodman.makeWorld()
    const disk = MemoryFs.makeDisk()
    for (const m of config.manifests) {
      MemoryFs.seedFile(disk, `${appsDir}/${m.id}/manifest.yml`, m.text)
      for (const f of m.files ?? []) MemoryFs.seedFile(disk, `${appsDir}/${m.id}/${f.path}`, f.text)
    }
    // The catalog as the daemon reads it (templates included), for the invariants' renders.
    const catalog: Catalog = yield* loadCatalog(appsDir).pipe(
      Effect.provideService(
        FileSystem.FileSystem,
        MemoryFs.make(disk, () => ({ _tag: "Proceed" }))
      ),
      Effect.provide(Path.layer),
      Effect.orDie
    )
    const selection = Desired.defaultSelection(catalog)
    const claimedNames = catalog.apps.flatMap((a) => a.manifest.containers.map((c) => c.name))
    const manifestImages = [
      ...new Set(catalog.apps.flatMap((a) => a.manifest.containers.flatMap((c) => c.image ?? [])))
    ]
    world.images.push({ id: "f0000000000a", names: [foreignImage] })
    const events = yield* PubSub.unbounded<RuntimeEvent>()

    // One daemon incarnation: its own process flag, adapters and services over the shared world.
    let incarnation = 0
    let crashes = 0
    let passesBefore = 0
    const boot = Effect.gen(function* () {
      incarnation++
      const process: FakePodman.ProcessState = { alive: true }
      const hook: MemoryFs.FsHook = (op, path) => {
        if (!process.alive) return { _tag: "Crash", keep: 0 }
        if (mutatingFs.has(op) && faults.fire("fs.crash")) {
          process.alive = false
          const keep = op === "write" ? prng.next() : 0
          tr(`fault fs.crash: ${op} ${path}${op === "write" ? ` (${Math.floor(keep * 100)}% written)` : ""}`)
          return { _tag: "Crash", keep }
        }
        if (faults.fire("fs.error")) {
          const code = prng.pick(["EIO", "ENOSPC", "EACCES"] as const)
          tr(`fault fs.error: ${op} ${path}: ${code}`)
          return { _tag: "Fail", code }
        }
        return { _tag: "Proceed" }
      }
      const memoryFs = MemoryFs.make(disk, hook)
      const fs = config.variant === "in-place-writes" ? inPlaceWrites(memoryFs) : memoryFs
      const runtime = FakePodman.make({ world, prng, faults, process, events, trace: tr })
      const platform = Layer.mergeAll(
        Layer.succeed(FileSystem.FileSystem, fs),
        // The engine's directories live on the same in-memory disk, never the host's.
        Layer.succeed(HostDirectories, MemoryDirectories.make(fs)),
        Path.layer,
        Layer.succeed(PodmanRuntime, runtime),
        Layer.succeed(PodmanState, FakePodman.makeState({ world, prng, faults, process, events, trace: tr }))
      )
      // The daemon's own services (as `archy daemon` builds them), with secrets from the seed.
      const services = Layer.mergeAll(
        servicesLayer(stateDir),
        SecretStore.layer(nodeConfig.secretsDir, {
          randomBytes: (n) => Uint8Array.from({ length: n }, () => prng.int(256))
        })
      ).pipe(Layer.provideMerge(platform))
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(services, scope)
      const daemon = yield* Daemon.make(daemonConfig).pipe(Effect.provideContext(context))
      yield* daemon.start.pipe(Effect.provideContext(context), Effect.provideService(Scope.Scope, scope))
      tr(`daemon started (incarnation ${incarnation})`)
      return { process, scope, daemon }
    })

    let current = yield* boot
    const passesNow = () => Effect.map(current.daemon.passes, (n) => passesBefore + n)

    const restartIfCrashed = Effect.gen(function* () {
      if (current.process.alive) return
      crashes++
      passesBefore += yield* current.daemon.passes
      tr("daemon crashed: its memory is gone; restarting it")
      // Closing waits for actions that must finish; the dead process fails them at their next
      // call, but one may be waiting out a hang, so the close runs on its own fiber.
      yield* Effect.forkDetach(Scope.close(current.scope, Exit.void))
      current = yield* boot
    })

    /** The world misbehaving between steps, outside the daemon. */
    const chaos = Effect.gen(function* () {
      const nowMs = clock.currentTimeMillisUnsafe()
      const driver = FakePodman.makeDriver({
        world,
        prng,
        faults,
        process: current.process,
        events,
        trace: tr
      })
      if (faults.fire("world.containerDies")) {
        const running = world.containers.filter((c) => c.state === "running")
        if (running.length > 0) {
          const c = prng.pick(running)
          const code = prng.pick([0, 1, 2, 137])
          tr(`fault world.containerDies: ${c.name} exits ${code}`)
          driver.die(c, code, nowMs)
        }
      }
      if (faults.fire("world.strayClaimedName")) {
        const name = prng.pick(claimedNames)
        if (driver.holder(name) === undefined) {
          const image =
            prng.chance(0.5) && manifestImages.length > 0 ? prng.pick(manifestImages) : foreignImage
          tr(`fault world.strayClaimedName: ${name} from ${image}`)
          const c = driver.create(
            {
              name,
              image,
              labels: {},
              env: [],
              args: [],
              hasHealthcheck: false,
              restartPolicy: prng.pick(["no", "always", "on-failure"] as const)
            },
            nowMs
          )
          if (prng.chance(0.7)) driver.start(c, nowMs)
        }
      }
      if (faults.fire("world.strayForeign")) {
        const name = `stray-${world.nextId}`
        tr(`fault world.strayForeign: ${name}`)
        const c = driver.create(
          {
            name,
            image: foreignImage,
            labels: { "com.example.owner": "someone-else" },
            env: [],
            args: [],
            hasHealthcheck: false,
            restartPolicy: prng.pick(["no", "always", "on-failure"] as const)
          },
          nowMs
        )
        if (prng.chance(0.7)) driver.start(c, nowMs)
      }
      if (faults.fire("world.stateDbLoss")) {
        const ours = world.containers.filter((c) => !c.hidden && c.labels[labels.app] !== undefined)
        if (ours.length > 0) {
          const c = prng.pick(ours)
          c.hidden = true
          tr(`fault world.stateDbLoss: ${c.name} (${c.state}) is no longer listed`)
        }
      }
      yield* Effect.void
    })

    // Each check reads only what is new since the last one, unless a secret appeared since.
    let mutationsChecked = 0
    let logsChecked = 0
    let traceChecked = 0
    let secretsSeen = ""
    const checkInvariants = () => {
      const secrets = [...Invariants.secretsOnDisk(disk, nodeConfig.secretsDir).keys()].join(",")
      if (secrets !== secretsSeen) {
        logsChecked = 0
        traceChecked = 0
        secretsSeen = secrets
      }
      const v = Invariants.check({
        world,
        disk,
        catalog,
        node: nodeConfig,
        selection,
        jsonFiles: ["adopted", "selection", "manifests", "upgrades", "settings"].map(
          (f) => `${stateDir}/${f}.json`
        ),
        logs: [...logs.slice(logsChecked), ...trace.slice(traceChecked)],
        mutationsChecked
      })
      mutationsChecked = world.mutations.length
      logsChecked = logs.length
      traceChecked = trace.length
      return v
    }

    const fail = (phase: "safety" | "liveness", v: Invariants.Violation) => {
      const atMs = clock.currentTimeMillisUnsafe() - epochMs
      tr(`VIOLATION ${v.invariant}: ${v.detail}`)
      return { ...v, atMs, phase }
    }

    let violation: SimResult["violation"]
    const safetySeconds = config.safetySeconds ?? 120
    for (let step = 0; step < safetySeconds && violation === undefined; step++) {
      yield* chaos
      yield* TestClock.adjust(Duration.seconds(1))
      yield* restartIfCrashed
      const v = checkInvariants()
      if (v !== undefined) violation = fail("safety", v)
    }

    // Liveness: no more faults; the node must settle.
    let livenessPasses = 0
    if (violation === undefined) {
      faults.enabled = false
      tr("liveness: faults off")
      const adoptedOnDisk = () => {
        const f = MemoryFs.peekFile(disk, `${stateDir}/adopted.json`)
        return f === undefined
          ? {}
          : (JSON.parse(new TextDecoder().decode(f.bytes)) as Record<string, { readonly specHash: string }>)
      }
      const desiredNow = () => Invariants.desiredFromDisk({ disk, catalog, node: nodeConfig, selection })
      const startPasses = yield* passesNow()
      const maxPasses = config.livenessPasses ?? 60
      const maxSeconds = config.livenessSeconds ?? 900
      let converged = false
      let unsettled: string | undefined = "no pass yet"
      for (let s = 0; s < maxSeconds && !converged && violation === undefined; s++) {
        yield* TestClock.adjust(Duration.seconds(1))
        yield* restartIfCrashed
        const v = checkInvariants()
        if (v !== undefined) {
          violation = fail("liveness", v)
          break
        }
        livenessPasses = (yield* passesNow()) - startPasses
        const last = yield* current.daemon.lastPass
        if (last === undefined || livenessPasses === 0) continue
        unsettled = settled(desiredNow(), world, adoptedOnDisk(), last.reports)
        converged = unsettled === undefined
      }
      if (violation === undefined && !converged) {
        const last = yield* current.daemon.lastPass
        const pending = (last?.reports ?? []).map(
          (r) => `${r.action._tag} ${r.action.target} (${r.action.cause})`
        )
        violation = fail("liveness", {
          invariant: "converges",
          detail: `not settled after ${livenessPasses} passes and ${maxSeconds} s without faults; ${unsettled}; last pass: ${pending.join("; ") || "nothing planned"}`
        })
      } else if (violation === undefined && livenessPasses > maxPasses) {
        violation = fail("liveness", {
          invariant: "converges",
          detail: `took ${livenessPasses} passes to settle (bound ${maxPasses})`
        })
      } else if (violation === undefined) {
        tr(`converged after ${livenessPasses} passes`)
      }
    }
    const passes = yield* passesNow()
    // The result is what happened up to here; the daemon then dies at its next call.
    const finalTrace = [...trace]
    current.process.alive = false
    yield* Effect.forkDetach(Scope.close(current.scope, Exit.void))
    return {
      seed: config.seed,
      ok: violation === undefined,
      ...(violation !== undefined ? { violation } : {}),
      trace: finalTrace,
      activeFaults: faults.active,
      fired: faults.fired,
      crashes,
      passes,
      livenessPasses
    } satisfies SimResult
  })
