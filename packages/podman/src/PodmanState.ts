/**
 * FM6: podman's state DB (`libpod/bolt_state.db`) no longer matches what storage and the OCI
 * runtime hold. After the DB is lost, podman lists no containers and exits 0 while the old ones
 * still run, and creating one of their names fails with "name already in use".
 *
 * Detection is cheap on a healthy node: podman's storage keeps its own list of containers in
 * `<graphRoot>/<driver>-containers/containers.json`, read here as a file (no podman call). Only
 * when that file names a container the pass's list lacks does it look deeper: podman's own list
 * with `external` (storage-only containers show as state `storage`), twice a second apart (a
 * container being created is in storage a moment before the DB), and the runtime's pid files.
 *
 * Cleaning an orphan never runs `podman system reset` and never touches images, volumes or app
 * data: the OCI runtime kills and deletes it, conmon is ended, its network namespace, CNI IP
 * allocation and iptables rules are released, and `podman rm --storage` removes its storage.
 * The plan then creates the container again from its manifest.
 *
 * Not part of `PodmanRuntime`: a fake runtime has no storage to lose. The reconciler uses this
 * service when it is provided.
 */
import { readFileSync } from "node:fs"
import * as fsp from "node:fs/promises"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as LibpodApi from "./LibpodApi.ts"
import { RuntimeError, UnexpectedOutput } from "./PodmanRuntime.ts"

/** Where podman keeps its store and which OCI runtime it runs, from `podman info`. */
export interface StoreInfo {
  readonly graphRoot: string
  readonly runRoot: string
  readonly driver: string
  /** The OCI runtime binary (`/usr/bin/runc`). */
  readonly runtimePath: string
}

/** A container storage holds that podman's state DB does not list. */
export interface Orphan {
  readonly id: string
  readonly name: string
  /** What still holds it, for the action's cause: `storage`, `storage, running as pid 123`. */
  readonly detail: string
}

export class PodmanState extends Context.Service<
  PodmanState,
  {
    /**
     * The orphans among storage's containers: not in `listed` (the pass's container list) and
     * named in `names` (the names our manifests claim), or any name when `names` is undefined.
     * On a healthy node this is one file read.
     */
    readonly orphans: (
      listed: ReadonlyArray<{ readonly id: string }>,
      names?: ReadonlySet<string>
    ) => Effect.Effect<ReadonlyArray<Orphan>, RuntimeError>
    /** Stops and removes one orphan; resolves with the steps taken, for the log. */
    readonly clean: (orphan: {
      readonly id: string
      readonly name: string
    }) => Effect.Effect<ReadonlyArray<string>, RuntimeError>
    /** How many deeper looks (podman calls) detection made so far: 0 on a healthy node. */
    readonly deepLooks: Effect.Effect<number>
  }
>()("archy/podman/PodmanState") {}

// ---------------------------------------------------------------------------------------------
// Pure parts

const StorageContainer = Schema.Struct({
  id: Schema.String,
  names: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String))),
  created: Schema.optionalKey(Schema.String)
})
const decodeStorage = Schema.decodeUnknownResult(
  Schema.fromJsonString(Schema.NullOr(Schema.Array(StorageContainer)))
)

/** storage's `containers.json`, as `{id, name}`; throws a message when it does not parse. */
export const parseStorageContainers = (
  text: string
): ReadonlyArray<{ readonly id: string; readonly name: string }> => {
  const r = decodeStorage(text)
  if (r._tag === "Failure") throw new Error(`containers.json does not parse: ${r.failure.message}`)
  return (r.success ?? []).map((c) => ({ id: c.id, name: c.names?.[0] ?? c.id }))
}

/** Storage containers the list lacks, restricted to `names` when given. */
export const unlisted = (
  storage: ReadonlyArray<{ readonly id: string; readonly name: string }>,
  listed: ReadonlyArray<{ readonly id: string }>,
  names?: ReadonlySet<string>
): ReadonlyArray<{ readonly id: string; readonly name: string }> => {
  const known = new Set(listed.map((c) => c.id))
  return storage.filter((c) => !known.has(c.id) && (names === undefined || names.has(c.name)))
}

const Info = Schema.Struct({
  host: Schema.Struct({ ociRuntime: Schema.Struct({ path: Schema.String }) }),
  store: Schema.Struct({ graphRoot: Schema.String, runRoot: Schema.String, graphDriverName: Schema.String })
})
const toInfo = (i: typeof Info.Type): StoreInfo => ({
  graphRoot: i.store.graphRoot,
  runRoot: i.store.runRoot,
  driver: i.store.graphDriverName,
  runtimePath: i.host.ociRuntime.path
})

const External = Schema.NullOr(
  Schema.Array(
    Schema.Struct({
      Id: Schema.String,
      State: Schema.optionalKey(Schema.NullOr(Schema.String))
    })
  )
)

/** The init pid and bundle of a runc/crun `state.json`, or undefined when it does not parse. */
export const parseRuntimeState = (
  text: string
): { readonly pid: number; readonly bundle: string } | undefined => {
  try {
    const j = JSON.parse(text) as { init_process_pid?: unknown; config?: { labels?: unknown } }
    const labels = Array.isArray(j.config?.labels) ? (j.config.labels as Array<unknown>) : []
    const bundle = labels.find((l): l is string => typeof l === "string" && l.startsWith("bundle="))
    const pid = Number(j.init_process_pid)
    return bundle !== undefined && Number.isInteger(pid) && pid > 0
      ? { pid, bundle: bundle.slice("bundle=".length) }
      : undefined
  } catch {
    return undefined
  }
}

/** Splits one `iptables -S` line into arguments (double quotes, with `\"` inside). */
export const splitRule = (line: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  let cur = ""
  let inWord = false
  let quoted = false
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!
    if (quoted) {
      if (ch === "\\" && line[i + 1] === '"') {
        cur += '"'
        i++
      } else if (ch === '"') quoted = false
      else cur += ch
    } else if (ch === '"') {
      quoted = true
      inWord = true
    } else if (ch === " ") {
      if (inWord) out.push(cur)
      cur = ""
      inWord = false
    } else {
      cur += ch
      inWord = true
    }
  }
  if (inWord) out.push(cur)
  return out
}

/**
 * The iptables commands that remove what CNI added for container `id` in one table (`-S`
 * output): its rules (CNI comments carry `id: "<id>"`), then the per-container chains they jumped
 * to (`CNI-<hash>`, `CNI-DN-<hash>`) once nothing else refers to them.
 */
export const iptablesCleanup = (rulesText: string, id: string): ReadonlyArray<ReadonlyArray<string>> => {
  const lines = rulesText.split("\n").filter((l) => l.startsWith("-A "))
  const mine = lines.filter((l) => l.includes(`id: \\"${id}\\"`))
  const deletes = mine.map((l) => ["-D", ...splitRule(l).slice(1)])
  const chains = new Set<string>()
  for (const l of mine) {
    const m = / -j (CNI-(?:DN-)?[0-9a-f]{16,})\b/.exec(l)
    if (m !== null) chains.add(m[1]!)
  }
  const remaining = lines.filter((l) => !mine.includes(l))
  const drops: Array<ReadonlyArray<string>> = []
  for (const chain of chains) {
    const referenced = remaining.some((l) => l.includes(` -j ${chain}`) && !l.startsWith(`-A ${chain} `))
    if (!referenced) drops.push(["-F", chain], ["-X", chain])
  }
  return [...deletes, ...drops]
}

// ---------------------------------------------------------------------------------------------
// The live service

export interface Options {
  /** podman's API socket; without one, the `podman` CLI answers `info` and the external list. */
  readonly socketPath?: string
  /** Where CNI keeps its IP allocations (default `/var/lib/cni/networks`). */
  readonly cniDir?: string
  /** How long a candidate must stay an orphan before it counts (default 1 s). */
  readonly confirmAfter?: Duration.Duration
}

const unexpected = (operation: string, detail: string) =>
  new RuntimeError({ reason: new UnexpectedOutput({ operation, detail }) })

const message = (e: unknown) => (e instanceof Error ? e.message : String(e))

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The parent of `pid` (conmon, for a container's init process), or undefined. */
const parentOf = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
    return Number.isInteger(ppid) && ppid > 1 ? ppid : undefined
  } catch {
    return undefined
  }
}

const readText = (path: string) =>
  Effect.tryPromise(() => fsp.readFile(path, "utf8")).pipe(Effect.orElseSucceed(() => undefined))

export const make = Effect.fn("PodmanState.make")(function* (options: Options = {}) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const api =
    options.socketPath !== undefined ? LibpodApi.make({ socketPath: options.socketPath }) : undefined
  const cniDir = options.cniDir ?? "/var/lib/cni/networks"
  const confirmAfter = options.confirmAfter ?? Duration.seconds(1)
  const infoRef = yield* Ref.make<StoreInfo | undefined>(undefined)
  const looks = yield* Ref.make(0)

  /** Runs a command to its end: exit code and output; fails only when it cannot run. */
  const exec = (command: string, args: ReadonlyArray<string>, timeoutMs = 60_000) =>
    Effect.gen(function* () {
      const handle = yield* spawner.spawn(
        ChildProcess.make(command, [...args], { stdin: "ignore", forceKillAfter: Duration.seconds(2) })
      )
      const [stdout, stderr, code] = yield* Effect.all(
        [
          Stream.mkString(Stream.decodeText(handle.stdout)),
          Stream.mkString(Stream.decodeText(handle.stderr)),
          handle.exitCode
        ],
        { concurrency: "unbounded" }
      )
      return { code: Number(code), stdout, stderr }
    }).pipe(
      Effect.scoped,
      Effect.timeoutOrElse({
        duration: Duration.millis(timeoutMs),
        orElse: () =>
          Effect.fail(unexpected(`${command} ${args.join(" ")}`, `no answer within ${timeoutMs} ms`))
      }),
      Effect.mapError((e) =>
        e instanceof RuntimeError ? e : unexpected(`${command} ${args.join(" ")}`, message(e))
      )
    )

  const decodeInfo = Schema.decodeUnknownEffect(Schema.fromJsonString(Info))

  /** podman info, once: the store's paths do not change while podman runs. */
  const info = Effect.gen(function* () {
    const cached = yield* Ref.get(infoRef)
    if (cached !== undefined) return cached
    const body =
      api !== undefined
        ? (yield* api.call({ operation: "podman info", method: "GET", path: "/info" })).body
        : (yield* exec("podman", ["info", "--format", "json"])).stdout
    const parsed = toInfo(
      yield* decodeInfo(body).pipe(Effect.mapError((e) => unexpected("podman info", e.message)))
    )
    yield* Ref.set(infoRef, parsed)
    return parsed
  })

  const containersDir = (root: string, i: StoreInfo) => `${root}/${i.driver}-containers`

  const readStorage = (i: StoreInfo) =>
    Effect.tryPromise({
      try: () => fsp.readFile(`${containersDir(i.graphRoot, i)}/containers.json`, "utf8"),
      catch: (e) => e
    }).pipe(
      // No file yet: storage has never held a container.
      Effect.catch((e) =>
        (e as NodeJS.ErrnoException)?.code === "ENOENT"
          ? Effect.succeed("[]")
          : Effect.fail(unexpected("read storage containers.json", message(e)))
      ),
      Effect.flatMap((text) =>
        Effect.try({
          try: () => parseStorageContainers(text),
          catch: (e) => unexpected("read storage", message(e))
        })
      )
    )

  /** Ids podman itself reports as in storage only (its DB does not know them). */
  const storageOnly = Effect.gen(function* () {
    yield* Ref.update(looks, (n) => n + 1)
    const decode = Schema.decodeUnknownEffect(Schema.fromJsonString(External))
    const body =
      api !== undefined
        ? (yield* api.call({
            operation: "list containers with external",
            method: "GET",
            path: "/containers/json?all=true&external=true"
          })).body
        : (yield* exec("podman", ["ps", "-a", "--external", "--format", "json"])).stdout
    const list = yield* decode(body).pipe(Effect.mapError((e) => unexpected("list external", e.message)))
    return new Map((list ?? []).map((c) => [c.Id, c.State?.toLowerCase() ?? ""]))
  })

  /**
   * Containers the OCI runtime still runs from this store whose storage is gone as well (the
   * DB was lost and the storage removed without stopping them): still holding ports and IPs.
   * A directory read of the runtime's state root; a state file is read only for an id neither
   * the list nor storage knows (none on a healthy node with one store).
   */
  const runtimeOnly = (i: StoreInfo, known: ReadonlySet<string>, names?: ReadonlySet<string>) =>
    Effect.gen(function* () {
      const root = `/run/${i.runtimePath.split("/").pop()}`
      const ids = yield* Effect.tryPromise(() => fsp.readdir(root)).pipe(Effect.orElseSucceed(() => []))
      const out: Array<Orphan> = []
      for (const id of ids) {
        if (known.has(id) || !/^[0-9a-f]{64}$/.test(id)) continue
        const text = yield* readText(`${root}/${id}/state.json`)
        const state = text === undefined ? undefined : parseRuntimeState(text)
        if (state === undefined || !state.bundle.startsWith(`${containersDir(i.graphRoot, i)}/`)) continue
        const conmon = parentOf(state.pid)
        const cmdline = conmon === undefined ? undefined : yield* readText(`/proc/${conmon}/cmdline`)
        const args = cmdline?.split("\0") ?? []
        const name = args[args.indexOf("-n") + 1]
        if (name === undefined || args.indexOf("-n") < 0 || (names !== undefined && !names.has(name)))
          continue
        out.push({
          id,
          name,
          detail: `storage is gone too, yet the OCI runtime still runs it as pid ${state.pid} under conmon ${conmon}`
        })
      }
      return out
    })

  const pidIn = (path: string) =>
    Effect.map(readText(path), (t) => {
      const n = Number(t?.trim())
      return Number.isInteger(n) && n > 0 ? n : undefined
    })

  const describe = (i: StoreInfo, id: string) =>
    Effect.gen(function* () {
      const dir = `${containersDir(i.runRoot, i)}/${id}/userdata`
      const pid = yield* pidIn(`${dir}/pidfile`)
      const conmon = yield* pidIn(`${dir}/conmon.pid`)
      const running = pid !== undefined && alive(pid)
      return running
        ? `storage still holds it and it runs as pid ${pid}${conmon !== undefined && alive(conmon) ? ` under conmon ${conmon}` : ""}`
        : "storage still holds it"
    })

  const orphans = Effect.fn("PodmanState.orphans")(function* (
    listed: ReadonlyArray<{ readonly id: string }>,
    names?: ReadonlySet<string>
  ) {
    const i = yield* info
    const storage = yield* readStorage(i)
    const first = unlisted(storage, listed, names)
    const known = new Set([...listed.map((c) => c.id), ...storage.map((c) => c.id)])
    const running = yield* runtimeOnly(i, known, names)
    if (first.length === 0 && running.length === 0) return []
    // Something is off, or a container is being created or removed right now: ask podman, and
    // again a moment later; only what stays storage-only (or unknown to podman while the runtime
    // runs it) both times is an orphan.
    const once = yield* storageOnly
    const isStorage = (m: ReadonlyMap<string, string>, id: string) => m.get(id) === "storage"
    if (!first.some((c) => isStorage(once, c.id)) && !running.some((c) => !once.has(c.id))) return []
    yield* Effect.sleep(confirmAfter)
    const twice = yield* storageOnly
    const again = yield* readStorage(i)
    const inStorage = new Set(unlisted(again, [], names).map((c) => c.id))
    const still = new Set((yield* runtimeOnly(i, new Set(again.map((c) => c.id)), names)).map((c) => c.id))
    const out: Array<Orphan> = []
    for (const c of first) {
      if (isStorage(once, c.id) && isStorage(twice, c.id) && inStorage.has(c.id))
        out.push({ id: c.id, name: c.name, detail: yield* describe(i, c.id) })
    }
    for (const c of running) if (!once.has(c.id) && !twice.has(c.id) && still.has(c.id)) out.push(c)
    return out
  })

  const clean = Effect.fn("PodmanState.clean")(function* (orphan: {
    readonly id: string
    readonly name: string
  }) {
    const i = yield* info
    const { id } = orphan
    if (!/^[0-9a-f]{64}$/.test(id))
      return yield* unexpected(`clean ${orphan.name}`, `not a container id: ${id}`)
    const steps: Array<string> = []
    const runDir = `${containersDir(i.runRoot, i)}/${id}/userdata`
    const bundle = `${containersDir(i.graphRoot, i)}/${id}/userdata/config.json`
    const runtimeState = yield* readText(`/run/${i.runtimePath.split("/").pop()}/${id}/state.json`)
    const initPid = runtimeState === undefined ? undefined : parseRuntimeState(runtimeState)?.pid
    const conmon =
      (yield* pidIn(`${runDir}/conmon.pid`)) ?? (initPid === undefined ? undefined : parentOf(initPid))
    const netns = yield* readText(bundle).pipe(
      Effect.map((t) => {
        const m = t === undefined ? null : /"type":"network","path":"(\/run\/netns\/[^"]+)"/.exec(t)
        return m?.[1]
      })
    )

    // 1. The OCI runtime: kill and delete (a container it does not know is fine).
    const state = yield* exec(i.runtimePath, ["state", id])
    if (state.code === 0) {
      const del = yield* exec(i.runtimePath, ["delete", "--force", id])
      if (del.code !== 0)
        return yield* unexpected(`${i.runtimePath} delete --force ${id}`, del.stderr.trim().slice(-300))
      steps.push(`${i.runtimePath.split("/").pop()} killed and deleted it`)
    }

    // 2. conmon exits once its container is gone; end it if it does not.
    if (conmon !== undefined && alive(conmon)) {
      const cmdline = yield* readText(`/proc/${conmon}/cmdline`)
      if (cmdline?.includes(id) === true) {
        for (let k = 0; k < 20 && alive(conmon); k++) yield* Effect.sleep(Duration.millis(50))
        if (alive(conmon)) {
          yield* Effect.sync(() => process.kill(conmon, "SIGKILL")).pipe(Effect.ignore)
          steps.push(`ended conmon ${conmon}`)
        }
      }
    }

    // 3. Network: the namespace, CNI's IP allocation, CNI's iptables rules.
    if (netns !== undefined && (yield* readText("/proc/self/mountinfo"))?.includes(` ${netns} `) === true) {
      yield* exec("umount", [netns])
      yield* Effect.tryPromise(() => fsp.rm(netns, { force: true })).pipe(Effect.ignore)
      steps.push(`removed network namespace ${netns}`)
    }
    const networks = yield* Effect.tryPromise(() => fsp.readdir(cniDir)).pipe(Effect.orElseSucceed(() => []))
    for (const net of networks) {
      const entries = yield* Effect.tryPromise(() => fsp.readdir(`${cniDir}/${net}`)).pipe(
        Effect.orElseSucceed(() => [])
      )
      for (const entry of entries) {
        if (!/^[0-9a-f.:]+$/.test(entry)) continue
        const owner = yield* readText(`${cniDir}/${net}/${entry}`)
        if (owner?.split(/\s/)[0] === id) {
          yield* Effect.tryPromise(() => fsp.rm(`${cniDir}/${net}/${entry}`, { force: true })).pipe(
            Effect.ignore
          )
          steps.push(`released IP ${entry} on ${net}`)
        }
      }
    }
    for (const table of ["nat", "filter"]) {
      const rules = yield* exec("iptables", ["-w", "-t", table, "-S"]).pipe(Effect.option)
      if (rules._tag === "None" || rules.value.code !== 0) continue
      const commands = iptablesCleanup(rules.value.stdout, id)
      for (const args of commands) yield* exec("iptables", ["-w", "-t", table, ...args])
      if (commands.length > 0) steps.push(`removed its ${table} iptables rules`)
    }

    // 4. Storage: the container's layer and files (never the image, never volumes). Its /dev/shm
    // mount is podman's to undo on cleanup, which never came: undo it here or removal is "busy".
    const shm = `${containersDir(i.graphRoot, i)}/${id}/userdata/shm`
    if ((yield* readText("/proc/self/mountinfo"))?.includes(` ${shm} `) === true) {
      yield* exec("umount", [shm])
      steps.push("unmounted its /dev/shm")
    }
    // Without --storage-driver: podman compares it with what its (new) DB recorded, "" by default.
    const rm = yield* exec("podman", [
      "--root",
      i.graphRoot,
      "--runroot",
      i.runRoot,
      "rm",
      "--force",
      "--storage",
      id
    ])
    if (rm.code !== 0 && !/no such container|not known/i.test(rm.stderr))
      return yield* unexpected(`podman rm --storage ${id}`, rm.stderr.trim().slice(-300))
    steps.push("removed its storage")
    return steps
  })

  return PodmanState.of({ orphans, clean, deepLooks: Ref.get(looks) })
})

export const layer = (
  options: Options = {}
): Layer.Layer<PodmanState, never, ChildProcessSpawner.ChildProcessSpawner> =>
  Layer.effect(PodmanState, make(options))
