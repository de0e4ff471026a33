/**
 * The `PodmanRuntime` port over the `podman` command: one child process per call, each with a
 * time limit, its exit code and stderr classified into `RuntimeError` reasons. The event stream is
 * one `podman events --format json` for as long as the stream runs; a failed health check's output
 * is read from `podman container inspect` (`healthcheck run` prints only the status). `inspect`
 * is one `podman container inspect NAME --format json`.
 *
 * A steady `observe` costs one process (`podman ps -a --format json`); images and networks change
 * only through our own applies (or by hand), so they are cached and listed again only after an
 * apply that can change them, or any failed apply.
 *
 * Needs `ChildProcessSpawner` and `FileSystem` (for the host directories of bind mounts):
 * `NodeServices.layer` from `@effect/platform-node` provides both.
 */
import type { ObservedContainer, ObservedImage, ObservedNetwork } from "@archy/core/Observed"
import { toContainerState } from "@archy/core/Observed"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import type * as PlatformError from "effect/PlatformError"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Ref from "effect/Ref"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { cliCreateArgs } from "./ContainerCreate.ts"
import type { RegistryMirror } from "./Mirrors.ts"
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
  NameInUse,
  NoSuchContainer,
  PodmanRuntime,
  PodmanUnreachable,
  RuntimeError,
  RuntimeTimeout,
  UnexpectedOutput
} from "./PodmanRuntime.ts"

/** Time limits, in milliseconds. Stops, restarts and removes get their grace period on top. */
export interface Timeouts {
  /** Listing: `ps`, `images`, `network ls`. */
  readonly queryMs: number
  /** Quick changes: `create`, `start`, `network create`, `tag`, `untag`; the margin over a stop's grace. */
  readonly changeMs: number
  /** One `podman pull` (each mirror and upstream get this much). */
  readonly pullMs: number
  readonly buildMs: number
  /**
   * One `podman healthcheck run`: podman 4.3 lets a check overrun its own timeout and reports the
   * overrun only once the command ends.
   */
  readonly healthcheckMs: number
}

export const defaultTimeouts: Timeouts = {
  queryMs: 30_000,
  changeMs: 60_000,
  pullMs: 30 * 60_000,
  buildMs: 60 * 60_000,
  healthcheckMs: 60_000
}

export interface Options {
  /** The podman binary (default `podman`, found on PATH). */
  readonly podman?: string
  /** A remote podman socket (`unix:///run/podman/podman.sock`), passed as `--url`. */
  readonly url?: string
  /**
   * podman's global flags, put before every subcommand: `--root R --runroot RR` for a store other
   * than the default one (a private store of the tests, say).
   */
  readonly globalArgs?: ReadonlyArray<string>
  readonly mirrors?: ReadonlyArray<RegistryMirror>
  readonly timeouts?: Partial<Timeouts>
}

// ---------------------------------------------------------------------------------------------
// Decoding podman's JSON (pure)

const PsEntry = Schema.Struct({
  Id: Schema.String,
  Names: Schema.Array(Schema.String),
  Image: Schema.String,
  Labels: Schema.optionalKey(Schema.NullOr(Schema.Record(Schema.String, Schema.String))),
  State: Schema.String,
  Status: Schema.optionalKey(Schema.String),
  ExitCode: Schema.Int,
  /** Unix seconds; podman prints Go's zero time (-62135596800) for a container never started. */
  StartedAt: Schema.Number
})

const ImageEntry = Schema.Struct({
  Id: Schema.String,
  /** Absent for a dangling image. */
  Names: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String))),
  Digest: Schema.optionalKey(Schema.String)
})

const NetworkEntry = Schema.Struct({
  name: Schema.String,
  subnets: Schema.optionalKey(
    Schema.NullOr(
      Schema.Array(Schema.Struct({ subnet: Schema.String, gateway: Schema.optionalKey(Schema.String) }))
    )
  )
})

// podman prints `[]` for an empty list; `null` is accepted as the same.
const decodePs = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.NullOr(Schema.Array(PsEntry))))
const decodeImages = Schema.decodeUnknownResult(
  Schema.fromJsonString(Schema.NullOr(Schema.Array(ImageEntry)))
)
const decodeNetworks = Schema.decodeUnknownResult(
  Schema.fromJsonString(Schema.NullOr(Schema.Array(NetworkEntry)))
)

/** podman 4.3 prints its own state names, which the core's literals copy; anything else is unknown. */
/** `Up 3 minutes ago (healthy)`: podman 4.3's ps JSON has the health only in `Status`. */
const healthOf = (status: string | undefined): ObservedContainer["health"] => {
  const m = status === undefined ? null : /\((healthy|unhealthy|starting)\)\s*$/.exec(status)
  return m === null ? undefined : (m[1] as "healthy" | "unhealthy" | "starting")
}

const decodeFailure = (text: string, message: string): string => {
  const trimmed = text.trim()
  const sample = trimmed.length > 200 ? `${trimmed.slice(0, 200)}…` : trimmed
  return `${message.split("\n").slice(0, 6).join("\n")} (output: ${sample === "" ? "empty" : sample})`
}

/** `podman ps -a --format json` -> the core's containers. */
export const parsePsJson = (text: string): Result.Result<ReadonlyArray<ObservedContainer>, string> => {
  const decoded = decodePs(text)
  if (Result.isFailure(decoded)) return Result.fail(decodeFailure(text, decoded.failure.message))
  const out: Array<ObservedContainer> = []
  for (const e of decoded.success ?? []) {
    const name = e.Names[0]
    if (name === undefined) return Result.fail(`container ${e.Id} has no name`)
    const health = healthOf(e.Status)
    out.push({
      id: e.Id,
      name,
      image: e.Image,
      labels: e.Labels ?? {},
      state: toContainerState(e.State),
      exitCode: e.ExitCode,
      ...(e.StartedAt > 0 ? { startedAtMs: e.StartedAt * 1000 } : {}),
      ...(health !== undefined ? { health } : {})
    })
  }
  return Result.succeed(out)
}

/** `podman images --format json` -> images, one per id (podman 4.3 prints an image once per tag). */
export const parseImagesJson = (text: string): Result.Result<ReadonlyArray<ObservedImage>, string> => {
  const decoded = decodeImages(text)
  if (Result.isFailure(decoded)) return Result.fail(decodeFailure(text, decoded.failure.message))
  const byId = new Map<string, ObservedImage>()
  for (const e of decoded.success ?? []) {
    const seen = byId.get(e.Id)
    const names = [...new Set([...(seen?.names ?? []), ...(e.Names ?? [])])]
    byId.set(e.Id, {
      id: e.Id,
      names,
      ...(e.Digest !== undefined && e.Digest !== "" ? { digest: e.Digest } : {})
    })
  }
  return Result.succeed([...byId.values()])
}

/** `podman network ls --format json` -> networks; 4.3 lists subnets itself, no inspect needed. */
export const parseNetworksJson = (text: string): Result.Result<ReadonlyArray<ObservedNetwork>, string> => {
  const decoded = decodeNetworks(text)
  if (Result.isFailure(decoded)) return Result.fail(decodeFailure(text, decoded.failure.message))
  return Result.succeed(
    (decoded.success ?? []).map((n): ObservedNetwork => {
      const first = n.subnets?.[0]
      return {
        name: n.name,
        ...(first !== undefined ? { subnet: first.subnet } : {}),
        ...(first?.gateway !== undefined && first.gateway !== "" ? { gateway: first.gateway } : {})
      }
    })
  )
}

/**
 * One line of `podman events --format json`. podman 4.3 prints
 * `{"ID":"…","Image":"…","Name":"lnd","Status":"died","Time":"2026-11-26T06:31:11.566621793Z",
 * "Type":"container","Attributes":{…},"ContainerExitCode":137}` (`Time` is RFC 3339 with
 * nanoseconds; an image event's `Name` is the image and it has no `ID`). Later podman prints
 * `time`/`timeNano` numbers instead: both are read.
 */
const EventEntry = Schema.Struct({
  Type: Schema.String,
  Status: Schema.String,
  ID: Schema.optionalKey(Schema.NullOr(Schema.String)),
  Name: Schema.optionalKey(Schema.NullOr(Schema.String)),
  Time: Schema.optionalKey(Schema.NullOr(Schema.Union([Schema.String, Schema.Number]))),
  time: Schema.optionalKey(Schema.NullOr(Schema.Number)),
  timeNano: Schema.optionalKey(Schema.NullOr(Schema.Number)),
  TimeNano: Schema.optionalKey(Schema.NullOr(Schema.Number))
})

const decodeEvent = Schema.decodeUnknownResult(Schema.fromJsonString(EventEntry))

const positive = (n: number | null | undefined): number | undefined =>
  n !== undefined && n !== null && Number.isFinite(n) && n > 0 ? n : undefined

/** One `podman events --format json` line -> the port's event; a line that does not fit is skipped. */
export const parseEventLine = (line: string): Result.Result<RuntimeEvent, string> => {
  const decoded = decodeEvent(line)
  if (Result.isFailure(decoded)) return Result.fail(decoded.failure.message)
  const e = decoded.success
  const nano = positive(e.timeNano) ?? positive(e.TimeNano)
  const seconds = positive(e.time) ?? (typeof e.Time === "number" ? positive(e.Time) : undefined)
  const parsed = typeof e.Time === "string" ? Date.parse(e.Time) : Number.NaN
  const timeMs =
    nano !== undefined
      ? Math.floor(nano / 1e6)
      : seconds !== undefined
        ? seconds * 1000
        : Number.isFinite(parsed) && parsed > 0
          ? parsed
          : undefined
  if (timeMs === undefined) return Result.fail("the event has no time")
  if (e.Status === "") return Result.fail("the event has no status")
  return Result.succeed({
    type: e.Type,
    action: e.Status,
    ...(e.ID !== undefined && e.ID !== null && e.ID !== "" ? { id: e.ID } : {}),
    ...(e.Name !== undefined && e.Name !== null && e.Name !== "" ? { name: e.Name } : {}),
    timeMs
  })
}

/** The part of `podman container inspect` that holds the health checks' recent outputs. */
const InspectHealth = Schema.Array(
  Schema.Struct({
    State: Schema.Struct({
      Health: Schema.optionalKey(
        Schema.NullOr(
          Schema.Struct({
            Log: Schema.optionalKey(
              Schema.NullOr(
                Schema.Array(
                  Schema.Struct({
                    ExitCode: Schema.optionalKey(Schema.NullOr(Schema.Number)),
                    Output: Schema.optionalKey(Schema.NullOr(Schema.String))
                  })
                )
              )
            )
          })
        )
      )
    })
  })
)
const decodeInspectHealth = Schema.decodeUnknownResult(Schema.fromJsonString(InspectHealth))

const shorten = (text: string, max = 500): string => {
  const t = text.trim().replace(/\s+/g, " ")
  return t.length > max ? `${t.slice(0, max)}…` : t
}

/** `podman container inspect NAME` -> what its last health check printed (or its exit code). */
export const parseLastCheckOutput = (text: string): string | undefined => {
  const decoded = decodeInspectHealth(text)
  if (Result.isFailure(decoded)) return undefined
  const entries = decoded.success[0]?.State.Health?.Log ?? []
  const last = entries[entries.length - 1]
  if (last === undefined) return undefined
  const output = shorten(last.Output ?? "")
  if (output !== "") return output
  return last.ExitCode !== undefined && last.ExitCode !== null ? `exit code ${last.ExitCode}` : undefined
}

/**
 * The part of `podman container inspect NAME --format json` that `inspect` reads (a one-element
 * array). podman 4.3 prints `Path` + `Args` as the process it runs, `Config.Cmd` as an array (or
 * null) and `Config.Entrypoint` as ONE space-joined string, which loses the word boundaries
 * (podman 5 prints an array).
 */
const InspectEntry = Schema.Struct({
  Name: Schema.String,
  Path: Schema.optionalKey(Schema.NullOr(Schema.String)),
  Args: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String))),
  Config: Schema.Struct({
    Env: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String))),
    Labels: Schema.optionalKey(Schema.NullOr(Schema.Record(Schema.String, Schema.String))),
    Entrypoint: Schema.optionalKey(Schema.NullOr(Schema.Union([Schema.String, Schema.Array(Schema.String)]))),
    Cmd: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String)))
  }),
  HostConfig: Schema.optionalKey(
    Schema.NullOr(
      Schema.Struct({ ExtraHosts: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String))) })
    )
  )
})
const decodeInspect = Schema.decodeUnknownResult(
  Schema.fromJsonString(Schema.NullOr(Schema.Array(InspectEntry)))
)

/**
 * `podman container inspect NAME --format json` -> the container's details, or `undefined` when
 * podman printed no container. The arguments are `Path` + `Args` (what podman runs, `--init`
 * included), else the entrypoint (a 4.x string split on whitespace) + command.
 */
export const parseInspectJson = (text: string): Result.Result<ContainerDetails | undefined, string> => {
  const decoded = decodeInspect(text)
  if (Result.isFailure(decoded)) return Result.fail(decodeFailure(text, decoded.failure.message))
  const c = decoded.success?.[0]
  if (c === undefined) return Result.succeed(undefined)
  const entrypoint = c.Config.Entrypoint ?? []
  const args =
    c.Path !== undefined && c.Path !== null && c.Path !== ""
      ? [c.Path, ...(c.Args ?? [])]
      : [
          ...(typeof entrypoint === "string" ? entrypoint.split(/\s+/).filter((w) => w !== "") : entrypoint),
          ...(c.Config.Cmd ?? [])
        ]
  return Result.succeed({
    name: c.Name.replace(/^\//, ""),
    env: c.Config.Env ?? [],
    args,
    labels: c.Config.Labels ?? {},
    extraHosts: c.HostConfig?.ExtraHosts ?? []
  })
}

// ---------------------------------------------------------------------------------------------
// Classifying failures (pure)

/** The command as shown in errors: environment values (`-e K=V`) are replaced by `K=…`. */
export const displayCommand = (podman: string, args: ReadonlyArray<string>): string => {
  const shown: Array<string> = [podman]
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    const prev = args[i - 1]
    if (prev === "-e" || prev === "--env") shown.push(`${a.split("=")[0]}=…`)
    else if (a.startsWith("--env=")) shown.push(`--env=${a.slice("--env=".length).split("=")[0]}=…`)
    else shown.push(/[\s"'\\$]/.test(a) || a === "" ? JSON.stringify(a) : a)
  }
  const text = shown.join(" ")
  return text.length > 1200 ? `${text.slice(0, 1200)}…` : text
}

/** The lines that say what went wrong: podman's `Error:` lines, else the first few. */
export const stderrSummary = (stderr: string): string => {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
  const errors = lines.filter((l) => l.startsWith("Error:"))
  const picked = (errors.length > 0 ? errors : lines).slice(0, 3)
  return picked.length === 0 ? "(no output on stderr)" : picked.join(" | ")
}

export interface Failure {
  readonly endpoint: string
  /** From `displayCommand`. */
  readonly command: string
  readonly exitCode: number
  readonly stderr: string
  /** The container the call was about, if any. */
  readonly container?: string
  /** The image the call was about, if any. */
  readonly image?: string
}

/** A failed podman call's reason, from its stderr. */
export const classifyFailure = (f: Failure): RuntimeError["reason"] => {
  const text = f.stderr
  const summary = stderrSummary(text)
  if (/unable to connect to Podman|Cannot connect to Podman/i.test(text)) {
    return new PodmanUnreachable({ endpoint: f.endpoint, detail: summary })
  }
  if (/no such container|no container with (name or )?id/i.test(text)) {
    return new NoSuchContainer({ container: f.container ?? summary })
  }
  // "bind: address already in use" is a host port another process holds, not a name conflict.
  if (/already in use/i.test(text) && !/address already in use/i.test(text)) {
    return new NameInUse({ container: f.container ?? summary })
  }
  if (/image not known|image unknown|manifest unknown|no such image|repository name not known/i.test(text)) {
    return new ImageMissing({ image: f.image ?? summary, detail: summary })
  }
  return new UnexpectedOutput({ operation: f.command, detail: `exit ${f.exitCode}: ${summary}` })
}

// ---------------------------------------------------------------------------------------------
// Running podman

interface Output {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

interface Call {
  readonly args: ReadonlyArray<string>
  readonly timeoutMs: number
  /** Each stdout and stderr line, as it comes. */
  readonly progress?: Progress | undefined
  readonly container?: string
  readonly image?: string
}

type Cache = {
  readonly generation: number
  readonly value:
    | { readonly images: ReadonlyArray<ObservedImage>; readonly networks: ReadonlyArray<ObservedNetwork> }
    | undefined
}

const fail = (reason: RuntimeError["reason"]) => Effect.fail(new RuntimeError({ reason }))

/**
 * Actions that change the images or networks: they are listed again right after them, so the
 * next pass still observes with one call.
 */
const invalidating: ReadonlySet<RuntimeAction["_tag"]> = new Set(["EnsureNetwork", "PullImage", "BuildImage"])

const make = (options: Options) =>
  Effect.gen(function* () {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const fs = yield* FileSystem.FileSystem
    const podman = options.podman ?? "podman"
    const globalArgs = [
      ...(options.url !== undefined ? ["--url", options.url] : []),
      ...(options.globalArgs ?? [])
    ]
    const endpoint = options.url !== undefined ? `${podman} --url ${options.url}` : podman
    const mirrors = options.mirrors ?? []
    const timeouts: Timeouts = { ...defaultTimeouts, ...options.timeouts }
    const calls = yield* Ref.make(0)
    const cache = yield* Ref.make<Cache>({ generation: 0, value: undefined })

    const platformFailure = (command: string, e: PlatformError.PlatformError): RuntimeError["reason"] =>
      e.reason._tag === "NotFound" || e.reason._tag === "PermissionDenied"
        ? new PodmanUnreachable({ endpoint, detail: `cannot run ${podman}: ${e.message}` })
        : new UnexpectedOutput({ operation: command, detail: e.message })

    const collect = (stream: Stream.Stream<Uint8Array, PlatformError.PlatformError>, progress?: Progress) =>
      progress === undefined
        ? Stream.mkString(Stream.decodeText(stream))
        : Effect.suspend(() => {
            const lines: Array<string> = []
            return stream.pipe(
              Stream.decodeText(),
              Stream.splitLines,
              Stream.runForEach((line) => {
                lines.push(line)
                return progress(line)
              }),
              Effect.map(() => lines.join("\n"))
            )
          })

    /** Runs podman once; fails only when it could not run or did not finish in time. */
    const exec = (call: Call): Effect.Effect<Output, RuntimeError> => {
      const command = displayCommand(podman, call.args)
      const run = Effect.gen(function* () {
        yield* Ref.update(calls, (n) => n + 1)
        const handle = yield* spawner.spawn(
          ChildProcess.make(podman, [...globalArgs, ...call.args], {
            stdin: "ignore",
            forceKillAfter: Duration.seconds(2)
          })
        )
        const [stdout, stderr, exitCode] = yield* Effect.all(
          [collect(handle.stdout, call.progress), collect(handle.stderr, call.progress), handle.exitCode],
          { concurrency: "unbounded" }
        )
        return { exitCode: Number(exitCode), stdout, stderr }
      }).pipe(
        Effect.scoped,
        Effect.catchTag("PlatformError", (e) => fail(platformFailure(command, e)))
      )
      return run.pipe(
        Effect.timeoutOrElse({
          duration: Duration.millis(call.timeoutMs),
          orElse: () => fail(new RuntimeTimeout({ operation: command, afterMs: call.timeoutMs }))
        })
      )
    }

    /** Runs podman once and requires exit 0, classifying anything else. */
    const run = (call: Call): Effect.Effect<Output, RuntimeError> =>
      exec(call).pipe(Effect.flatMap((out) => (out.exitCode === 0 ? Effect.succeed(out) : failed(call, out))))

    const failed = (call: Call, out: Output) =>
      fail(
        classifyFailure({
          endpoint,
          command: displayCommand(podman, call.args),
          exitCode: out.exitCode,
          stderr: out.stderr,
          ...(call.container !== undefined ? { container: call.container } : {}),
          ...(call.image !== undefined ? { image: call.image } : {})
        })
      )

    const query = <A>(
      args: ReadonlyArray<string>,
      parse: (text: string) => Result.Result<A, string>
    ): Effect.Effect<A, RuntimeError> =>
      run({ args, timeoutMs: timeouts.queryMs }).pipe(
        Effect.flatMap((out) => {
          const parsed = parse(out.stdout)
          return Result.isSuccess(parsed)
            ? Effect.succeed(parsed.success)
            : fail(new UnexpectedOutput({ operation: displayCommand(podman, args), detail: parsed.failure }))
        })
      )

    const listContainers = query(["ps", "-a", "--format", "json"], parsePsJson)

    const listRest = (generation: number) =>
      Effect.all(
        {
          images: query(["images", "--format", "json"], parseImagesJson),
          networks: query(["network", "ls", "--format", "json"], parseNetworksJson)
        },
        { concurrency: "unbounded" }
      ).pipe(
        // Keep it only if no apply invalidated the cache while we were listing.
        Effect.tap((value) =>
          Ref.update(cache, (c) => (c.generation === generation ? { generation, value } : c))
        )
      )

    const observe: Effect.Effect<RuntimeSnapshot, RuntimeError> = Effect.gen(function* () {
      const cached = yield* Ref.get(cache)
      const [containers, rest] = yield* Effect.all(
        [
          listContainers,
          cached.value !== undefined ? Effect.succeed(cached.value) : listRest(cached.generation)
        ],
        { concurrency: "unbounded" }
      )
      return { containers, images: rest.images, networks: rest.networks }
    })

    const invalidate = Ref.update(cache, (c) => ({ generation: c.generation + 1, value: undefined }))

    const stopGraceMs = (seconds: number) => seconds * 1000 + timeouts.changeMs

    const remove = (id: string, timeoutSeconds: number) => {
      const call: Call = {
        args: ["rm", "-f", "-t", String(timeoutSeconds), id],
        timeoutMs: stopGraceMs(timeoutSeconds),
        container: id
      }
      // `rm -f` of a missing container exits 0 in 4.3; the message is checked too, to be sure.
      return exec(call).pipe(
        Effect.flatMap((out) =>
          out.exitCode === 0 || /no such container|no container with/i.test(out.stderr)
            ? Effect.void
            : failed(call, out)
        )
      )
    }

    const create = (container: Extract<RuntimeAction, { _tag: "Create" }>["container"]) =>
      Effect.gen(function* () {
        for (const m of container.spec.mounts) {
          if (m.kind !== "directory") continue
          yield* fs
            .makeDirectory(m.source, { recursive: true })
            .pipe(
              Effect.catchTag("PlatformError", (e) =>
                fail(new UnexpectedOutput({ operation: `mkdir -p ${m.source}`, detail: e.message }))
              )
            )
        }
        yield* run({
          args: cliCreateArgs(container),
          timeoutMs: timeouts.changeMs,
          container: container.spec.name,
          image: container.spec.image
        })
      })

    const pull = (ref: string, progress: Progress | undefined) =>
      Effect.gen(function* () {
        const attempts: Array<string> = []
        for (const candidate of pullCandidates(ref, mirrors)) {
          // No flag for upstream: registries.conf decides (it may mark a registry insecure).
          const tls = candidate.tlsVerify !== undefined ? [`--tls-verify=${candidate.tlsVerify}`] : []
          const args = ["pull", ...tls, candidate.ref]
          const outcome = yield* exec({ args, timeoutMs: timeouts.pullMs, progress }).pipe(
            Effect.flatMap((out) => {
              if (out.exitCode === 0) return Effect.succeed("ok" as const)
              const reason = classifyFailure({
                endpoint,
                command: displayCommand(podman, args),
                exitCode: out.exitCode,
                stderr: out.stderr,
                image: candidate.ref
              })
              return reason._tag === "PodmanUnreachable"
                ? fail(reason)
                : Effect.succeed(stderrSummary(out.stderr))
            }),
            // A mirror that hangs is skipped like one that refuses; an unreachable podman is not.
            Effect.catchIf(
              (e) => e.reason._tag === "RuntimeTimeout",
              () => Effect.succeed(`timed out after ${timeouts.pullMs} ms`)
            )
          )
          if (outcome !== "ok") {
            attempts.push(`${candidate.via} (${candidate.ref}): ${outcome}`)
            continue
          }
          if (candidate.ref !== ref) {
            // Known by its upstream name, as the plan and `podman create` look for it.
            yield* run({
              args: ["tag", candidate.ref, ref],
              timeoutMs: timeouts.changeMs,
              image: candidate.ref
            })
            yield* run({ args: ["untag", ref, candidate.ref], timeoutMs: timeouts.changeMs, image: ref })
          }
          return
        }
        return yield* fail(new ImageMissing({ image: ref, detail: attempts.join("; ") }))
      })

    const build = (
      source: Extract<RuntimeAction, { _tag: "BuildImage" }>["source"],
      progress: Progress | undefined
    ) => {
      const file = source.containerfile.startsWith("/")
        ? source.containerfile
        : `${source.context}/${source.containerfile}`
      return run({
        args: ["build", "--pull=never", "-t", source.ref, "-f", file, source.context],
        timeoutMs: timeouts.buildMs,
        progress,
        image: source.ref
      })
    }

    const perform = (
      action: RuntimeAction,
      progress: Progress | undefined
    ): Effect.Effect<void, RuntimeError> => {
      switch (action._tag) {
        case "EnsureNetwork": {
          const n = action.network
          const call: Call = {
            args: ["network", "create", "--subnet", n.subnet, "--gateway", n.gateway, n.name],
            timeoutMs: timeouts.changeMs
          }
          return exec(call).pipe(
            Effect.flatMap((out) =>
              out.exitCode === 0 || /already exists/i.test(out.stderr) ? Effect.void : failed(call, out)
            )
          )
        }
        case "PullImage":
          return pull(action.source.ref, progress)
        case "BuildImage":
          return Effect.asVoid(build(action.source, progress))
        case "Create":
          return create(action.container)
        case "Start":
          return Effect.asVoid(
            run({ args: ["start", action.name], timeoutMs: timeouts.changeMs, container: action.name })
          )
        case "Stop":
          return Effect.asVoid(
            run({
              args: ["stop", "-t", String(action.timeoutSeconds), action.name],
              timeoutMs: stopGraceMs(action.timeoutSeconds),
              container: action.name
            })
          )
        case "Restart":
          return Effect.asVoid(
            run({
              args: ["restart", "-t", String(action.timeoutSeconds), action.name],
              timeoutMs: stopGraceMs(action.timeoutSeconds),
              container: action.name
            })
          )
        case "Remove":
          return remove(action.containerId, action.timeoutSeconds)
        case "Recreate":
          return remove(action.containerId, action.container.spec.stopTimeoutSeconds).pipe(
            Effect.andThen(create(action.container))
          )
      }
    }

    const apply = (action: RuntimeAction, progress?: Progress): Effect.Effect<void, RuntimeError> => {
      const done = perform(action, progress)
      if (!invalidating.has(action._tag)) return done.pipe(Effect.tapError(() => invalidate))
      return invalidate.pipe(
        Effect.andThen(done),
        Effect.tapError(() => invalidate),
        Effect.tap(() =>
          Ref.get(cache).pipe(
            Effect.flatMap((c) => listRest(c.generation)),
            Effect.catch(() => invalidate)
          )
        )
      )
    }

    // --- events and health checks -----------------------------------------------------------

    const eventsArgs = ["events", "--format", "json"]
    const eventsCommand = displayCommand(podman, eventsArgs)

    const events: Stream.Stream<RuntimeEvent, RuntimeError> = Stream.unwrap(
      Effect.gen(function* () {
        yield* Ref.update(calls, (n) => n + 1)
        // Lives as long as the stream: ending the stream kills it.
        const handle = yield* spawner.spawn(
          ChildProcess.make(podman, [...globalArgs, ...eventsArgs], {
            stdin: "ignore",
            forceKillAfter: Duration.seconds(2)
          })
        )
        let stderr = ""
        const stderrRead = yield* handle.stderr.pipe(
          Stream.decodeText(),
          Stream.runForEach((chunk) =>
            Effect.sync(() => {
              stderr = (stderr + chunk).slice(-4_000)
            })
          ),
          Effect.ignore,
          Effect.forkScoped
        )
        const lines = handle.stdout.pipe(
          Stream.decodeText(),
          Stream.splitLines,
          Stream.filterMap(parseEventLine)
        )
        // podman's stdout ended: a clean exit ends the stream, anything else fails it.
        const ended = handle.exitCode.pipe(
          Effect.flatMap((code) =>
            Number(code) === 0
              ? Effect.void
              : Fiber.join(stderrRead).pipe(
                  Effect.andThen(
                    Effect.suspend(() =>
                      fail(
                        classifyFailure({ endpoint, command: eventsCommand, exitCode: Number(code), stderr })
                      )
                    )
                  )
                )
          )
        )
        return Stream.concat(lines, Stream.drain(Stream.fromEffect(ended)))
      })
    ).pipe(
      Stream.catchTag("PlatformError", (e) =>
        Stream.fail(new RuntimeError({ reason: platformFailure(eventsCommand, e) }))
      )
    )

    const healthcheck = (container: string): Effect.Effect<HealthcheckResult, RuntimeError> => {
      const call: Call = {
        args: ["healthcheck", "run", container],
        timeoutMs: timeouts.healthcheckMs,
        container
      }
      return exec(call).pipe(
        Effect.flatMap((out): Effect.Effect<HealthcheckResult, RuntimeError> => {
          if (out.exitCode === 0) return Effect.succeed({ healthy: true, output: "" })
          // Exit 1 is a check that ran and failed; podman prints only the status (`unhealthy`).
          if (out.exitCode === 1) {
            const status = out.stdout.trim() || "unhealthy"
            return exec({
              args: ["container", "inspect", container],
              timeoutMs: timeouts.queryMs,
              container
            }).pipe(
              Effect.map((inspect) =>
                inspect.exitCode === 0 ? (parseLastCheckOutput(inspect.stdout) ?? status) : status
              ),
              Effect.catch(() => Effect.succeed(status)),
              Effect.map((output) => ({ healthy: false, output }))
            )
          }
          // podman 4.3 reports a check that overran its timeout as an error, after the command ended.
          if (/healthcheck command exceeded timeout/i.test(out.stderr)) {
            return Effect.succeed({
              healthy: false,
              output: stderrSummary(out.stderr).replace(/^Error:\s*/, "")
            })
          }
          return failed(call, out)
        })
      )
    }

    const inspect = (container: string): Effect.Effect<ContainerDetails, RuntimeError> => {
      const args = ["container", "inspect", container, "--format", "json"]
      // A missing container: exit 125, `no such container` on stderr and `[]` on stdout.
      return run({ args, timeoutMs: timeouts.queryMs, container }).pipe(
        Effect.flatMap((out) => {
          const parsed = parseInspectJson(out.stdout)
          if (Result.isFailure(parsed)) {
            return fail(
              new UnexpectedOutput({ operation: displayCommand(podman, args), detail: parsed.failure })
            )
          }
          return parsed.success === undefined
            ? fail(new NoSuchContainer({ container }))
            : Effect.succeed(parsed.success)
        })
      )
    }

    return PodmanRuntime.of({ endpoint, observe, apply, calls: Ref.get(calls), events, healthcheck, inspect })
  })

/** `PodmanRuntime` over the `podman` command. */
export const layer = (
  options: Options = {}
): Layer.Layer<PodmanRuntime, never, ChildProcessSpawner.ChildProcessSpawner | FileSystem.FileSystem> =>
  Layer.effect(PodmanRuntime, make(options))
