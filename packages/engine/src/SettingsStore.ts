/**
 * The operator's setting choices, persisted in `<state-dir>/settings.json` as
 * `{"<app id>": {"<setting>": value}}`: only what the operator chose; defaults stay in the
 * manifests, so a new default reaches every node that never chose otherwise.
 *
 * Written atomically. A missing file means every default. A corrupt one is an error naming it,
 * never a silent fallback to defaults: that would switch a node's network or drop its pruning.
 */
import type { SettingsChoices } from "@archy/core/Settings"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import type * as Path from "effect/Path"
import * as Schema from "effect/Schema"
import * as Semaphore from "effect/Semaphore"
import { writeAtomic } from "./AtomicFile.ts"

const SettingsJson = Schema.Record(
  Schema.String,
  Schema.Record(Schema.String, Schema.Union([Schema.String, Schema.Number, Schema.Boolean]))
)
const decode = Schema.decodeUnknownResult(Schema.fromJsonString(SettingsJson))

export class SettingsError extends Data.TaggedError("SettingsError")<{
  readonly file: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.file}: ${this.reason}`
  }
}

/** Sorted keys and no empty apps, so the file reads (and diffs) the same every time. */
const normalize = (choices: SettingsChoices): SettingsChoices =>
  Object.fromEntries(
    Object.keys(choices)
      .sort()
      .filter((app) => Object.keys(choices[app] ?? {}).length > 0)
      .map((app) => [
        app,
        Object.fromEntries(
          Object.keys(choices[app]!)
            .sort()
            .map((k) => [k, choices[app]![k]!])
        )
      ])
  )

export class SettingsStore extends Context.Service<
  SettingsStore,
  {
    /** Every app's choices; `{}` when the file does not exist yet. */
    readonly get: Effect.Effect<SettingsChoices, SettingsError>
    /**
     * Read-modify-write under one lock: `f` sees the current choices and answers the new ones
     * (persisted) or fails (nothing written).
     */
    readonly update: <E>(
      f: (current: SettingsChoices) => Effect.Effect<SettingsChoices, E>
    ) => Effect.Effect<SettingsChoices, SettingsError | E>
  }
>()("archy/engine/SettingsStore") {
  static readonly layer = (file: string) =>
    Layer.effect(
      SettingsStore,
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const platform = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
        const fail = (reason: string) => new SettingsError({ file, reason })
        const get = Effect.gen(function* () {
          const exists = yield* fs.exists(file).pipe(Effect.mapError((e) => fail(e.message)))
          if (!exists) return {}
          const text = yield* fs.readFileString(file).pipe(Effect.mapError((e) => fail(e.message)))
          const decoded = decode(text)
          if (decoded._tag === "Failure") {
            return yield* fail(
              `is not valid settings JSON ({"<app>": {"<setting>": value}}): ${decoded.failure.message.split("\n")[0]}; fix or remove it`
            )
          }
          return decoded.success as SettingsChoices
        })
        const lock = yield* Semaphore.make(1)
        const update = <E>(f: (current: SettingsChoices) => Effect.Effect<SettingsChoices, E>) =>
          Effect.gen(function* () {
            const next = normalize(yield* f(yield* get))
            yield* writeAtomic(file, new TextEncoder().encode(`${JSON.stringify(next, null, 2)}\n`), {
              mode: 0o600
            }).pipe(
              Effect.provideContext(platform),
              Effect.mapError((e) => fail(e.message))
            )
            return next
          }).pipe(lock.withPermits(1))
        return SettingsStore.of({ get, update })
      })
    )
}
