/**
 * The libpod REST adapter of `PodmanRuntime`. A steady observe pass is ONE request
 * (`GET /containers/json?all=true`): images and networks are cached and fetched again only after
 * something that may change them (a network, pull, build, removal or recreation) or after any
 * failed apply. Builds run `podman build` against the same podman (`--url` for a non-default
 * socket); everything else is HTTP.
 *
 * Events follow `GET /events?stream=true` (one request for as long as the stream runs). A health
 * check is `GET /containers/{name}/healthcheck`, which in podman 4.3 answers only the status: a
 * failed check's output is read from the container's recorded health log (one more request).
 * `inspect` is one `GET /containers/{name}/json`.
 */
import { spawn } from "node:child_process"
import { mkdir } from "node:fs/promises"
import { isAbsolute, join } from "node:path"
import type { DesiredContainer } from "@archy/core/Desired"
import {
  type ObservedContainer,
  type ObservedImage,
  type ObservedNetwork,
  toContainerState
} from "@archy/core/Observed"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { libpodCreateBody } from "./ContainerCreate.ts"
import * as LibpodApi from "./LibpodApi.ts"
import type { PullCandidate, RegistryMirror } from "./Mirrors.ts"
import { pullCandidates } from "./Mirrors.ts"
import type {
  ContainerDetails,
  HealthcheckResult,
  Progress,
  RuntimeAction,
  RuntimeEvent,
  RuntimeSnapshot
} from "./PodmanRuntime.ts"
import {
  ImageMissing,
  PodmanRuntime,
  PodmanUnreachable,
  RuntimeError,
  RuntimeTimeout,
  UnexpectedOutput
} from "./PodmanRuntime.ts"
import { rootfulSocket } from "./Socket.ts"

export interface Timeouts {
  /** Any single request (a stop or removal adds its own grace period). Default 30 s. */
  readonly requestMs?: number
  /** One pull attempt, per candidate. Default 30 min. */
  readonly pullMs?: number
  /** One build. Default 60 min. */
  readonly buildMs?: number
  /**
   * One health check run. Default 60 s: podman 4.3 lets a check overrun its own timeout and
   * reports the overrun only once the command ends.
   */
  readonly healthcheckMs?: number
}

export interface Options {
  readonly socketPath: string
  readonly mirrors?: ReadonlyArray<RegistryMirror>
  readonly timeouts?: Timeouts
  /** The podman binary for builds. Default `podman`. */
  readonly podmanPath?: string
}

// ---------------------------------------------------------------------------------------------
// Decoding podman's lists into the core's Observed shapes
// ---------------------------------------------------------------------------------------------

const optionalNullable = <S extends Schema.Top>(schema: S) => Schema.optionalKey(Schema.NullOr(schema))

export const ContainerJson = Schema.Struct({
  Id: Schema.String,
  Names: optionalNullable(Schema.Array(Schema.String)),
  Image: optionalNullable(Schema.String),
  Labels: optionalNullable(Schema.Record(Schema.String, Schema.String)),
  State: Schema.String,
  Exited: optionalNullable(Schema.Boolean),
  ExitCode: optionalNullable(Schema.Number),
  /** Unix seconds; Go's zero time (a large negative number) when it never started. */
  StartedAt: optionalNullable(Schema.Number),
  /** In podman 4.x's libpod list: the health status, when there is a health check. */
  Status: optionalNullable(Schema.String)
})
export type ContainerJson = typeof ContainerJson.Type

export const ImageJson = Schema.Struct({
  Id: Schema.String,
  Names: optionalNullable(Schema.Array(Schema.String)),
  RepoTags: optionalNullable(Schema.Array(Schema.String)),
  Digest: optionalNullable(Schema.String)
})
export type ImageJson = typeof ImageJson.Type

export const NetworkJson = Schema.Struct({
  name: Schema.String,
  subnets: optionalNullable(
    Schema.Array(Schema.Struct({ subnet: Schema.String, gateway: optionalNullable(Schema.String) }))
  )
})
export type NetworkJson = typeof NetworkJson.Type

const healths = ["healthy", "unhealthy", "starting"] as const

export const toObservedContainer = (c: ContainerJson): ObservedContainer => {
  const state = toContainerState(c.State)
  const exited = c.Exited === true || state === "exited" || state === "stopped"
  const health = healths.find((h) => h === c.Status)
  const startedAt = c.StartedAt ?? 0
  return {
    id: c.Id,
    name: (c.Names?.[0] ?? c.Id).replace(/^\//, ""),
    image: c.Image ?? "",
    labels: c.Labels ?? {},
    state,
    ...(exited && c.ExitCode !== undefined && c.ExitCode !== null
      ? { exitCode: Math.trunc(c.ExitCode) }
      : {}),
    ...(startedAt > 0 ? { startedAtMs: startedAt * 1000 } : {}),
    ...(health !== undefined ? { health } : {})
  }
}

/**
 * The fully qualified form podman itself reports: `busybox:1` and `library/busybox:1` are
 * `docker.io/library/busybox:1`; `<none>` is no name.
 */
export const normalizeImageName = (name: string): string | undefined => {
  if (name.length === 0 || name.startsWith("<none>")) return undefined
  const slash = name.indexOf("/")
  const first = slash < 0 ? "" : name.slice(0, slash)
  const hasRegistry = first.includes(".") || first.includes(":") || first === "localhost"
  if (hasRegistry) return name
  if (/^sha256:[0-9a-f]+$/.test(name)) return undefined
  return slash < 0 ? `docker.io/library/${name}` : `docker.io/${name}`
}

export const toObservedImage = (i: ImageJson): ObservedImage => {
  const names = [...(i.Names ?? []), ...(i.RepoTags ?? [])].flatMap((n) => normalizeImageName(n) ?? [])
  return {
    id: i.Id,
    names: [...new Set(names)],
    ...(i.Digest !== undefined && i.Digest !== null && i.Digest !== "" ? { digest: i.Digest } : {})
  }
}

export const toObservedNetwork = (n: NetworkJson): ObservedNetwork => {
  const first = n.subnets?.[0]
  return {
    name: n.name,
    ...(first !== undefined ? { subnet: first.subnet } : {}),
    ...(first?.gateway !== undefined && first.gateway !== null && first.gateway !== ""
      ? { gateway: first.gateway }
      : {})
  }
}

// ---------------------------------------------------------------------------------------------
// Events and health checks
// ---------------------------------------------------------------------------------------------

/**
 * One line of `GET /libpod/events?stream=true` (podman 4.3): Docker's shape, e.g.
 * `{"status":"died","id":"…","from":"…","Type":"container","Action":"died","Actor":{"ID":"…",
 * "Attributes":{"name":"lnd","image":"…","containerExitCode":"137",…}},"scope":"local",
 * "time":1795674671,"timeNano":1795674671566621793}`.
 */
export const EventJson = Schema.Struct({
  Type: Schema.String,
  Action: optionalNullable(Schema.String),
  status: optionalNullable(Schema.String),
  id: optionalNullable(Schema.String),
  Actor: optionalNullable(
    Schema.Struct({
      ID: optionalNullable(Schema.String),
      Attributes: optionalNullable(Schema.Record(Schema.String, Schema.Unknown))
    })
  ),
  time: optionalNullable(Schema.Number),
  timeNano: optionalNullable(Schema.Number)
})
export type EventJson = typeof EventJson.Type

const decodeEventJson = Schema.decodeUnknownResult(Schema.fromJsonString(EventJson))

const nonEmpty = (s: string | null | undefined): string | undefined =>
  s === undefined || s === null || s === "" ? undefined : s

/** One event line -> the port's event; a line that does not fit is skipped (`Failure`). */
export const parseEventLine = (line: string): Result.Result<RuntimeEvent, string> => {
  const decoded = decodeEventJson(line)
  if (Result.isFailure(decoded)) return Result.fail(decoded.failure.message)
  const e = decoded.success
  const action = nonEmpty(e.Action) ?? nonEmpty(e.status)
  if (action === undefined) return Result.fail("the event has no action")
  const timeMs =
    e.timeNano !== undefined && e.timeNano !== null && e.timeNano > 0
      ? Math.floor(e.timeNano / 1e6)
      : e.time !== undefined && e.time !== null && e.time > 0
        ? e.time * 1000
        : undefined
  if (timeMs === undefined) return Result.fail("the event has no time")
  const id = nonEmpty(e.Actor?.ID) ?? nonEmpty(e.id)
  const name = e.Actor?.Attributes?.name
  return Result.succeed({
    type: e.Type,
    action,
    ...(id !== undefined ? { id } : {}),
    ...(typeof name === "string" && name !== "" ? { name } : {}),
    timeMs
  })
}

/** `GET /libpod/containers/{name}/healthcheck`: podman 4.3 fills only `Status` (`Log` is null). */
export const HealthcheckJson = Schema.Struct({
  Status: Schema.String
})

/** The part of `GET /libpod/containers/{name}/json` that holds the checks' recent outputs. */
export const HealthLogJson = Schema.Struct({
  State: Schema.Struct({
    Health: optionalNullable(
      Schema.Struct({
        Log: optionalNullable(
          Schema.Array(
            Schema.Struct({
              ExitCode: optionalNullable(Schema.Number),
              Output: optionalNullable(Schema.String)
            })
          )
        )
      })
    )
  })
})

/** Trimmed, whitespace-collapsed, at most `max` characters. */
export const shorten = (text: string, max = 500): string => {
  const t = text.trim().replace(/\s+/g, " ")
  return t.length > max ? `${t.slice(0, max)}…` : t
}

/** What the last recorded check printed, or its exit code when it printed nothing. */
export const lastCheckOutput = (log: typeof HealthLogJson.Type): string | undefined => {
  const entries = log.State.Health?.Log ?? []
  const last = entries[entries.length - 1]
  if (last === undefined) return undefined
  const output = shorten(last.Output ?? "")
  if (output !== "") return output
  return last.ExitCode !== undefined && last.ExitCode !== null ? `exit code ${last.ExitCode}` : undefined
}

/** podman 4.3 reports a check that overran its timeout as an error, after the command ended. */
export const isCheckTimeout = (message: string): boolean =>
  /healthcheck command exceeded timeout/i.test(message)

// ---------------------------------------------------------------------------------------------
// Inspecting one container
// ---------------------------------------------------------------------------------------------

/**
 * The part of `GET /libpod/containers/{name}/json` that `inspect` reads. podman 4.3 answers
 * `Path` + `Args` as the process it runs (with `--init`: `/run/podman-init -- …`), `Config.Cmd`
 * as an array (or null) and `Config.Entrypoint` as ONE space-joined string (`/bin/sh -c echo x y`),
 * which loses the word boundaries; podman 5 sends it as an array. `Config.Env` and `Config.Labels`
 * include what the image and podman add (`PATH=…`, `TERM=xterm`, `container=podman`).
 */
export const InspectJson = Schema.Struct({
  Name: Schema.String,
  Path: optionalNullable(Schema.String),
  Args: optionalNullable(Schema.Array(Schema.String)),
  Config: Schema.Struct({
    Env: optionalNullable(Schema.Array(Schema.String)),
    Labels: optionalNullable(Schema.Record(Schema.String, Schema.String)),
    Entrypoint: optionalNullable(Schema.Union([Schema.String, Schema.Array(Schema.String)])),
    Cmd: optionalNullable(Schema.Array(Schema.String))
  }),
  HostConfig: optionalNullable(
    Schema.Struct({
      ExtraHosts: optionalNullable(Schema.Array(Schema.String))
    })
  )
})
export type InspectJson = typeof InspectJson.Type

/**
 * The process podman runs: `Path` + `Args` when podman reports them, else the configured
 * entrypoint (a 4.x string split on whitespace) + command.
 */
export const processArgs = (c: InspectJson): ReadonlyArray<string> => {
  if (c.Path !== undefined && c.Path !== null && c.Path !== "") return [c.Path, ...(c.Args ?? [])]
  const entrypoint = c.Config.Entrypoint ?? []
  const words = typeof entrypoint === "string" ? entrypoint.split(/\s+/).filter((w) => w !== "") : entrypoint
  return [...words, ...(c.Config.Cmd ?? [])]
}

export const toContainerDetails = (c: InspectJson): ContainerDetails => ({
  name: c.Name.replace(/^\//, ""),
  env: c.Config.Env ?? [],
  args: processArgs(c),
  labels: c.Config.Labels ?? {},
  extraHosts: c.HostConfig?.ExtraHosts ?? []
})

// ---------------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------------

/** `host:5000/a/b:tag@sha256:…` -> repo `host:5000/a/b`, tag `tag` (`latest` when neither is given). */
export const splitTag = (ref: string): { readonly repo: string; readonly tag?: string } => {
  const at = ref.indexOf("@")
  const name = at >= 0 ? ref.slice(0, at) : ref
  const colon = name.lastIndexOf(":")
  if (colon > name.lastIndexOf("/")) return { repo: name.slice(0, colon), tag: name.slice(colon + 1) }
  return at >= 0 ? { repo: name } : { repo: name, tag: "latest" }
}

const enc = encodeURIComponent

const PullLine = Schema.Struct({
  stream: Schema.optionalKey(Schema.NullOr(Schema.String)),
  error: Schema.optionalKey(Schema.NullOr(Schema.String)),
  id: Schema.optionalKey(Schema.NullOr(Schema.String)),
  images: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String)))
})
const decodePullLine = Schema.decodeUnknownOption(Schema.fromJsonString(PullLine))

const fail = (reason: RuntimeError["reason"]) => Effect.fail(new RuntimeError({ reason }))

/**
 * Actions that change the images or networks: the cache is listed again right after them, so
 * the next pass still observes with one call.
 */
const invalidating: ReadonlySet<RuntimeAction["_tag"]> = new Set(["EnsureNetwork", "PullImage", "BuildImage"])

interface Cache {
  readonly images: ReadonlyArray<ObservedImage>
  readonly networks: ReadonlyArray<ObservedNetwork>
}

/** A list podman may send as `null` when it is empty. */
const nullableList = <S extends Schema.Top & { readonly DecodingServices: never }>(item: S) =>
  Schema.NullOr(Schema.Array(item))

const noProgress: Progress = () => Effect.void

export const make = (options: Options) =>
  Effect.gen(function* () {
    const { socketPath } = options
    const mirrors = options.mirrors ?? []
    const requestMs = options.timeouts?.requestMs ?? LibpodApi.defaultTimeoutMs
    const pullMs = options.timeouts?.pullMs ?? 30 * 60_000
    const buildMs = options.timeouts?.buildMs ?? 60 * 60_000
    const healthcheckMs = options.timeouts?.healthcheckMs ?? 60_000
    const podman = options.podmanPath ?? "podman"
    const api = LibpodApi.make({ socketPath, timeoutMs: requestMs })
    const cache = yield* Ref.make<Cache | undefined>(undefined)
    const builds = yield* Ref.make(0)

    const listContainers = api.json(
      { operation: "list containers", method: "GET", path: "/containers/json?all=true" },
      nullableList(ContainerJson)
    )
    const listImages = api.json(
      { operation: "list images", method: "GET", path: "/images/json" },
      nullableList(ImageJson)
    )
    const listNetworks = api.json(
      { operation: "list networks", method: "GET", path: "/networks/json" },
      nullableList(NetworkJson)
    )

    const refreshCache = Effect.all([listImages, listNetworks], { concurrency: 2 }).pipe(
      Effect.map(
        ([images, networks]): Cache => ({
          images: (images ?? []).map(toObservedImage),
          networks: (networks ?? []).map(toObservedNetwork)
        })
      ),
      Effect.tap((fresh) => Ref.set(cache, fresh))
    )

    const observe: Effect.Effect<RuntimeSnapshot, RuntimeError> = Effect.gen(function* () {
      const cached = yield* Ref.get(cache)
      const [containers, rest] = yield* Effect.all(
        [listContainers, cached !== undefined ? Effect.succeed(cached) : refreshCache],
        { concurrency: 2 }
      )
      return { containers: (containers ?? []).map(toObservedContainer), ...rest }
    })

    // --- containers ------------------------------------------------------------------------

    const graceMs = (seconds: number) => requestMs + Math.max(0, seconds) * 1000

    const mkdirs = (c: DesiredContainer) =>
      Effect.forEach(
        c.spec.mounts.filter((m) => m.kind === "directory"),
        (m) =>
          Effect.tryPromise({
            try: () => mkdir(m.source, { recursive: true }),
            catch: (e) =>
              new RuntimeError({
                reason: new UnexpectedOutput({
                  operation: `create container ${c.spec.name}`,
                  detail: `cannot create mount directory ${m.source}: ${e instanceof Error ? e.message : String(e)}`
                })
              })
          }),
        { discard: true }
      )

    const create = (c: DesiredContainer) =>
      mkdirs(c).pipe(
        Effect.andThen(
          api.call({
            operation: `create container ${c.spec.name}`,
            method: "POST",
            path: "/containers/create",
            body: libpodCreateBody(c),
            container: c.spec.name,
            image: c.spec.image
          })
        )
      )

    const remove = (idOrName: string, timeoutSeconds: number) =>
      api.call({
        operation: `remove container ${idOrName}`,
        method: "DELETE",
        path: `/containers/${enc(idOrName)}?force=true&timeout=${timeoutSeconds}`,
        container: idOrName,
        accept: [404],
        timeoutMs: graceMs(timeoutSeconds)
      })

    // --- networks --------------------------------------------------------------------------

    const ensureNetwork = (network: {
      readonly name: string
      readonly subnet: string
      readonly gateway: string
    }) => {
      const request: LibpodApi.Request = {
        operation: `create network ${network.name}`,
        method: "POST",
        path: "/networks/create",
        body: {
          name: network.name,
          driver: "bridge",
          subnets: [{ subnet: network.subnet, gateway: network.gateway }]
        }
      }
      return api
        .send(request)
        .pipe(
          Effect.flatMap((response) =>
            (response.status >= 200 && response.status < 300) ||
            response.status === 409 ||
            LibpodApi.errorMessage(response.body).includes("already exists")
              ? Effect.void
              : Effect.fail(LibpodApi.classify(request, response))
          )
        )
    }

    // --- images ----------------------------------------------------------------------------

    /** One pull attempt: `undefined` when it worked, else why not. Unreachable podman fails. */
    const pullOne = (candidate: PullCandidate, progress: Progress) =>
      Effect.gen(function* () {
        let error: string | undefined
        let pulled = false
        yield* progress(`pulling ${candidate.ref} (${candidate.via})`)
        const attempt = yield* api
          .stream(
            {
              operation: `pull ${candidate.ref}`,
              method: "POST",
              // Upstream carries no tlsVerify: podman's registries.conf decides.
              path: `/images/pull?reference=${enc(candidate.ref)}${candidate.tlsVerify !== undefined ? `&tlsVerify=${candidate.tlsVerify}` : ""}&policy=always`,
              image: candidate.ref,
              timeoutMs: pullMs
            },
            (line) => {
              const parsed = decodePullLine(line)
              if (parsed._tag === "None") return progress(line)
              const { stream, error: e, id, images } = parsed.value
              if (e !== undefined && e !== null && e !== "") error = e
              if ((id !== undefined && id !== null) || (images !== undefined && images !== null))
                pulled = true
              return stream !== undefined && stream !== null && stream.trim() !== ""
                ? progress(stream.trimEnd())
                : Effect.void
            }
          )
          .pipe(Effect.result)
        if (attempt._tag === "Failure") {
          const reason = attempt.failure.reason
          if (reason._tag === "PodmanUnreachable") return yield* Effect.fail(attempt.failure)
          return attempt.failure.message
        }
        if (error !== undefined) return error
        if (!pulled) return "podman's answer named no image"
        return undefined
      })

    /** Gives an image pulled from a mirror its upstream name, and drops the mirror's name. */
    const renameFromMirror = (candidate: PullCandidate, ref: string) =>
      Effect.gen(function* () {
        const upstream = splitTag(ref)
        const mirror = splitTag(candidate.ref)
        if (upstream.tag === undefined || mirror.tag === undefined) return
        yield* api.call({
          operation: `tag ${candidate.ref} as ${ref}`,
          method: "POST",
          path: `/images/${enc(candidate.ref)}/tag?repo=${enc(upstream.repo)}&tag=${enc(upstream.tag)}`,
          image: candidate.ref
        })
        yield* api.call({
          operation: `untag ${candidate.ref}`,
          method: "POST",
          path: `/images/${enc(ref)}/untag?repo=${enc(mirror.repo)}&tag=${enc(mirror.tag)}`,
          image: candidate.ref,
          accept: [404]
        })
      })

    const pull = (ref: string, progress: Progress) =>
      Effect.gen(function* () {
        const failures: Array<string> = []
        for (const candidate of pullCandidates(ref, mirrors)) {
          const why = yield* pullOne(candidate, progress)
          if (why === undefined) {
            if (candidate.ref !== ref) yield* renameFromMirror(candidate, ref)
            return
          }
          failures.push(`${candidate.ref} (${candidate.via}): ${why}`)
          yield* progress(`pull of ${candidate.ref} failed: ${why}`)
        }
        return yield* fail(
          new ImageMissing({ image: ref, detail: `every pull failed: ${failures.join("; ")}` })
        )
      })

    type BuildItem =
      | { readonly _tag: "Line"; readonly line: string }
      | { readonly _tag: "Exit"; readonly code: number | null; readonly tail: ReadonlyArray<string> }

    const build = (
      source: { readonly ref: string; readonly context: string; readonly containerfile: string },
      progress: Progress
    ) =>
      Effect.gen(function* () {
        yield* Ref.update(builds, (n) => n + 1)
        const operation = `build ${source.ref}`
        const file = isAbsolute(source.containerfile)
          ? source.containerfile
          : join(source.context, source.containerfile)
        const args = [
          ...(socketPath !== rootfulSocket ? ["--url", `unix://${socketPath}`] : []),
          "build",
          "--pull=never",
          "-t",
          source.ref,
          "-f",
          file,
          source.context
        ]
        const items = Stream.callback<BuildItem, RuntimeError>((queue) =>
          Effect.callback<void, RuntimeError>((resume) => {
            const child = spawn(podman, args, { stdio: ["ignore", "pipe", "pipe"] })
            const tail: Array<string> = []
            const reader = () => {
              let partial = ""
              return (chunk: Buffer) => {
                partial += chunk.toString("utf8")
                let nl = partial.indexOf("\n")
                while (nl >= 0) {
                  const line = partial.slice(0, nl).trimEnd()
                  partial = partial.slice(nl + 1)
                  if (line.length > 0) {
                    tail.push(line)
                    if (tail.length > 5) tail.shift()
                    Queue.offerUnsafe(queue, { _tag: "Line", line })
                  }
                  nl = partial.indexOf("\n")
                }
              }
            }
            child.stdout.on("data", reader())
            child.stderr.on("data", reader())
            child.on("error", (e) =>
              resume(fail(new PodmanUnreachable({ endpoint: podman, detail: `${operation}: ${e.message}` })))
            )
            child.on("close", (code) => {
              Queue.offerUnsafe(queue, { _tag: "Exit", code, tail: [...tail] })
              Queue.endUnsafe(queue)
              resume(Effect.void)
            })
            return Effect.sync(() => {
              child.kill("SIGTERM")
            })
          })
        )
        let exit: (BuildItem & { readonly _tag: "Exit" }) | undefined
        yield* Stream.runForEach(items, (item) =>
          item._tag === "Line"
            ? progress(item.line)
            : Effect.sync(() => {
                exit = item
              })
        ).pipe(
          Effect.timeoutOrElse({
            duration: buildMs,
            orElse: () => fail(new RuntimeTimeout({ operation, afterMs: buildMs }))
          })
        )
        if (exit === undefined) {
          return yield* fail(
            new UnexpectedOutput({ operation, detail: "podman build ended without a status" })
          )
        }
        if (exit.code === 0) return
        const detail = `exit code ${exit.code ?? "none"}: ${exit.tail.join(" | ")}`
        return yield* exit.tail.some((l) => l.includes("image not known"))
          ? fail(new ImageMissing({ image: source.ref, detail: `its base image is missing: ${detail}` }))
          : fail(new UnexpectedOutput({ operation, detail }))
      })

    // --- apply -----------------------------------------------------------------------------

    const run = (action: RuntimeAction, progress: Progress): Effect.Effect<void, RuntimeError> => {
      switch (action._tag) {
        case "EnsureNetwork":
          return ensureNetwork(action.network)
        case "PullImage":
          return pull(action.source.ref, progress)
        case "BuildImage":
          return build(action.source, progress)
        case "Create":
          return Effect.asVoid(create(action.container))
        case "Start":
          return Effect.asVoid(
            api.call({
              operation: `start container ${action.name}`,
              method: "POST",
              path: `/containers/${enc(action.name)}/start`,
              container: action.name,
              accept: [304]
            })
          )
        case "Stop":
          return Effect.asVoid(
            api.call({
              operation: `stop container ${action.name}`,
              method: "POST",
              path: `/containers/${enc(action.name)}/stop?timeout=${action.timeoutSeconds}`,
              container: action.name,
              accept: [304],
              timeoutMs: graceMs(action.timeoutSeconds)
            })
          )
        case "Restart":
          return Effect.asVoid(
            api.call({
              operation: `restart container ${action.name}`,
              method: "POST",
              // podman 4.3's libpod restart ignores `t` and kills at once; `timeout` is what it reads.
              path: `/containers/${enc(action.name)}/restart?timeout=${action.timeoutSeconds}&t=${action.timeoutSeconds}`,
              container: action.name,
              timeoutMs: graceMs(action.timeoutSeconds)
            })
          )
        case "Remove":
          return Effect.asVoid(
            remove(action.containerId !== "" ? action.containerId : action.name, action.timeoutSeconds)
          )
        case "Recreate":
          return remove(
            action.containerId !== "" ? action.containerId : action.container.spec.name,
            action.container.spec.stopTimeoutSeconds
          ).pipe(Effect.andThen(create(action.container)), Effect.asVoid)
      }
    }

    const apply = (action: RuntimeAction, progress: Progress = noProgress) =>
      run(action, progress).pipe(
        Effect.onExit((exit) =>
          exit._tag === "Failure"
            ? Ref.set(cache, undefined)
            : invalidating.has(action._tag)
              ? refreshCache.pipe(Effect.catch(() => Ref.set(cache, undefined)))
              : Effect.void
        )
      )

    // --- events and health checks -----------------------------------------------------------

    const events: Stream.Stream<RuntimeEvent, RuntimeError> = api
      .lines({ operation: "follow events", method: "GET", path: "/events?stream=true" })
      .pipe(Stream.filterMap(parseEventLine))

    /** What the failed check printed, from the container's recorded log; best effort. */
    const checkOutput = (container: string, status: string) =>
      api
        .json(
          {
            operation: `inspect container ${container}`,
            method: "GET",
            path: `/containers/${enc(container)}/json`,
            container
          },
          HealthLogJson
        )
        .pipe(
          Effect.map((log) => lastCheckOutput(log) ?? status),
          Effect.catch(() => Effect.succeed(status))
        )

    const healthcheck = (container: string): Effect.Effect<HealthcheckResult, RuntimeError> => {
      const request: LibpodApi.Request = {
        operation: `health check of ${container}`,
        method: "GET",
        path: `/containers/${enc(container)}/healthcheck`,
        container,
        timeoutMs: healthcheckMs
      }
      return api.send(request).pipe(
        Effect.flatMap((response): Effect.Effect<HealthcheckResult, RuntimeError> => {
          if (response.status >= 200 && response.status < 300) {
            const decoded = Schema.decodeUnknownResult(Schema.fromJsonString(HealthcheckJson))(response.body)
            if (Result.isFailure(decoded)) {
              return fail(
                new UnexpectedOutput({
                  operation: request.operation,
                  detail: shorten(decoded.failure.message, 300)
                })
              )
            }
            const status = decoded.success.Status
            if (status === "healthy") return Effect.succeed({ healthy: true, output: "" })
            if (status === "unhealthy" || status === "starting") {
              return checkOutput(container, status).pipe(Effect.map((output) => ({ healthy: false, output })))
            }
            return fail(
              new UnexpectedOutput({
                operation: request.operation,
                detail: `unknown health status ${status}`
              })
            )
          }
          const message = LibpodApi.errorMessage(response.body)
          if (isCheckTimeout(message)) return Effect.succeed({ healthy: false, output: shorten(message) })
          return Effect.fail(LibpodApi.classify(request, response))
        })
      )
    }

    const inspect = (container: string): Effect.Effect<ContainerDetails, RuntimeError> =>
      api
        .json(
          {
            operation: `inspect container ${container}`,
            method: "GET",
            path: `/containers/${enc(container)}/json`,
            container
          },
          InspectJson
        )
        .pipe(Effect.map(toContainerDetails))

    return PodmanRuntime.of({
      endpoint: socketPath,
      observe,
      apply,
      events,
      healthcheck,
      inspect,
      calls: Effect.all([api.requests, Ref.get(builds)]).pipe(Effect.map(([a, b]) => a + b))
    })
  })

export const layer = (options: Options): Layer.Layer<PodmanRuntime> =>
  Layer.effect(PodmanRuntime, make(options))
