/**
 * The upgrade records (`<state-dir>/upgrades.json`): each app's latest upgrade, its state, the
 * images it moved from and to, and the images Desired runs instead of the manifests'. Every pass
 * reads them (so the reconciler, the API, the CLI and a restarted daemon agree); writes are atomic
 * and one at a time. A missing file means no upgrades; a corrupt one is an error naming it, never
 * read as empty (that would silently move upgraded apps back to their manifests' images).
 */
import * as Upgrade from "@archy/core/Upgrade"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import type * as Path from "effect/Path"
import * as Schema from "effect/Schema"
import * as Semaphore from "effect/Semaphore"
import { writeAtomic } from "./AtomicFile.ts"

const decode = Schema.decodeUnknownResult(Schema.fromJsonString(Upgrade.UpgradeRecords))

export class UpgradeStoreError extends Data.TaggedError("UpgradeStoreError")<{
  readonly file: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.file}: ${this.reason}`
  }
}

export class UpgradeStore extends Context.Service<
  UpgradeStore,
  {
    readonly file: string
    readonly all: Effect.Effect<Upgrade.UpgradeRecords, UpgradeStoreError>
    /** What Desired applies: the images to run instead of the manifests'. */
    readonly overrides: Effect.Effect<Upgrade.ImageOverrides, UpgradeStoreError>
    readonly get: (app: string) => Effect.Effect<Upgrade.UpgradeRecord | undefined, UpgradeStoreError>
    /** Replaces one app's record. */
    readonly set: (record: Upgrade.UpgradeRecord) => Effect.Effect<void, UpgradeStoreError>
  }
>()("archy/engine/UpgradeStore") {
  static readonly layer = (file: string) =>
    Layer.effect(
      UpgradeStore,
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const platform = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
        const fail = (reason: string) => new UpgradeStoreError({ file, reason })
        const all = Effect.gen(function* () {
          const exists = yield* fs.exists(file).pipe(Effect.mapError((e) => fail(e.message)))
          if (!exists) return {} as Upgrade.UpgradeRecords
          const text = yield* fs.readFileString(file).pipe(Effect.mapError((e) => fail(e.message)))
          const decoded = decode(text)
          if (decoded._tag === "Failure") {
            return yield* fail(
              `is not a valid upgrade record (${decoded.failure.message.split("\n")[0]}); fix or remove it`
            )
          }
          return decoded.success
        })
        const lock = yield* Semaphore.make(1)
        const set = (record: Upgrade.UpgradeRecord) =>
          Effect.gen(function* () {
            const next = { ...(yield* all), [record.app]: record }
            yield* writeAtomic(file, new TextEncoder().encode(`${JSON.stringify(next, null, 2)}\n`), {
              mode: 0o600
            }).pipe(
              Effect.provideContext(platform),
              Effect.mapError((e) => fail(e.message))
            )
          }).pipe(lock.withPermits(1))
        return UpgradeStore.of({
          file,
          all,
          overrides: Effect.map(all, Upgrade.overridesOf),
          get: (app) => Effect.map(all, (r) => r[app]),
          set
        })
      })
    )
}
