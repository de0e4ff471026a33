/**
 * The user's choices (which apps are installed, which are stopped), persisted in the state dir so
 * a daemon restart keeps them. First start: the catalog's default apps. Written atomically; a
 * corrupt file is an error naming it, never a silent reset to defaults (that would uninstall
 * apps).
 */
import type { Catalog } from "@archy/core/Catalog"
import * as Desired from "@archy/core/Desired"
import { writeAtomic } from "@archy/engine/AtomicFile"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import type * as Path from "effect/Path"
import * as Schema from "effect/Schema"
import * as Semaphore from "effect/Semaphore"

const SelectionJson = Schema.Struct({
  installed: Schema.Array(Schema.String),
  stopped: Schema.Array(Schema.String)
})
const decode = Schema.decodeUnknownResult(Schema.fromJsonString(SelectionJson))

export class SelectionError extends Data.TaggedError("SelectionError")<{
  readonly file: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.file}: ${this.reason}`
  }
}

export class SelectionStore extends Context.Service<
  SelectionStore,
  {
    /**
     * The current selection; on first start the catalog's defaults, saved once the catalog loads
     * without issues.
     */
    readonly get: (catalog: Catalog) => Effect.Effect<Desired.Selection, SelectionError>
    readonly update: (
      catalog: Catalog,
      f: (s: Desired.Selection) => Desired.Selection
    ) => Effect.Effect<Desired.Selection, SelectionError>
  }
>()("archy/daemon/SelectionStore") {
  static readonly layer = (file: string) =>
    Layer.effect(
      SelectionStore,
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const platform = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
        const fail = (reason: string) => new SelectionError({ file, reason })
        const save = (s: Desired.Selection) =>
          writeAtomic(file, new TextEncoder().encode(`${JSON.stringify(s, null, 2)}\n`), {
            mode: 0o600
          }).pipe(
            Effect.provideContext(platform),
            Effect.mapError((e) => fail(e.message))
          )
        const read = (catalog: Catalog) =>
          Effect.gen(function* () {
            const exists = yield* fs.exists(file).pipe(Effect.mapError((e) => fail(e.message)))
            if (!exists) {
              const first = Desired.defaultSelection(catalog)
              // Defaults are saved only from a catalog that loaded whole: a manifest unreadable
              // for a moment on first start must not uninstall its app for good.
              if (catalog.issues.length === 0) yield* save(first)
              return first
            }
            const text = yield* fs.readFileString(file).pipe(Effect.mapError((e) => fail(e.message)))
            const decoded = decode(text)
            if (decoded._tag === "Failure") {
              return yield* fail(
                `is not a valid selection (${decoded.failure.message.split("\n")[0]}); fix or remove it`
              )
            }
            return decoded.success as Desired.Selection
          })
        // Read-modify-write, one at a time: two installs at once must both stick. Reads take the
        // lock too: the first start's defaults, written by a read, must not land over an install.
        const lock = yield* Semaphore.make(1)
        const get = (catalog: Catalog) => read(catalog).pipe(lock.withPermits(1))
        const update = (catalog: Catalog, f: (s: Desired.Selection) => Desired.Selection) =>
          Effect.gen(function* () {
            const next = f(yield* read(catalog))
            const normalized = {
              installed: [...new Set(next.installed)].sort(),
              stopped: [...new Set(next.stopped)].filter((id) => next.installed.includes(id)).sort()
            }
            yield* save(normalized)
            return normalized as Desired.Selection
          }).pipe(lock.withPermits(1))
        return SelectionStore.of({ get, update })
      })
    )
}
