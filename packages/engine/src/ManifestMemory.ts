/**
 * The last good manifest of each app, so a manifest that stops loading (a bad edit, a corrupt
 * file, a half-copied update) never takes the app's Desired away: the app keeps running and
 * healing as its last good manifest says, and the rejection is reported every pass until the
 * file is fixed. Persisted as the manifests' text in `<state-dir>/manifests.json` (written
 * atomically), so a daemon restart keeps it too.
 *
 * An app whose directory disappeared is gone on purpose, not broken: it is not kept.
 */
import { type Catalog, catalogFromSources, type ManifestSource, readSources } from "@archy/core/Catalog"
import type { ManifestIssue } from "@archy/core/Manifest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import type * as Path from "effect/Path"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import { writeAtomic } from "./AtomicFile.ts"

const Remembered = Schema.Record(
  Schema.String,
  Schema.Struct({ file: Schema.String, dir: Schema.String, dirName: Schema.String, text: Schema.String })
)
const decode = Schema.decodeUnknownResult(Schema.fromJsonString(Remembered))

/** What a catalog load kept from memory, for the log and the pass summary. */
export interface Kept {
  readonly app: string
  readonly file: string
}

/**
 * Pure: the catalog from `sources`, with each rejected app (one whose directory is still there)
 * loaded from its remembered text instead. Every rejection stays in `issues`, plus one saying
 * the last good manifest is in use.
 */
export const withLastGood = (
  sources: ReadonlyArray<ManifestSource>,
  readIssues: ReadonlyArray<ManifestIssue>,
  remembered: Readonly<Record<string, ManifestSource>>
): {
  readonly catalog: Catalog
  readonly kept: ReadonlyArray<Kept>
  readonly good: ReadonlyArray<ManifestSource>
} => {
  const fresh = catalogFromSources(sources)
  const loaded = new Set(fresh.apps.map((a) => a.manifest.id))
  const kept: Array<Kept> = []
  const substituted = sources.map((s) => {
    const last = remembered[s.dirName]
    if (loaded.has(s.dirName) || last === undefined || last.text === s.text) return s
    kept.push({ app: s.dirName, file: s.file })
    return { ...s, text: last.text }
  })
  const catalog = kept.length === 0 ? fresh : catalogFromSources(substituted)
  const inUse = new Set(catalog.apps.map((a) => a.manifest.id))
  const keptInUse = kept.filter((k) => inUse.has(k.app))
  const keptIds = new Set(keptInUse.map((k) => k.app))
  // A kept app's rejection comes from the fresh load (the file as it is now); the rest from the
  // catalog in use (an app that depended on the broken one is fine again).
  const keptFiles = new Set(keptInUse.map((k) => k.file))
  const issues: Array<ManifestIssue> = [
    ...readIssues,
    ...fresh.issues.filter((i) => keptFiles.has(i.file)),
    ...catalog.issues.filter((i) => !keptFiles.has(i.file)),
    ...keptInUse.map((k) => ({
      file: k.file,
      path: "",
      message: `rejected; app ${k.app} keeps running as its last good manifest says until this file is fixed`
    }))
  ]
  return {
    catalog: { apps: catalog.apps, issues },
    kept: keptInUse,
    // Loaded from the file as it is now (also a dependant that loads again thanks to a kept app).
    good: sources.filter((s) => inUse.has(s.dirName) && !keptIds.has(s.dirName))
  }
}

export class ManifestMemory extends Context.Service<
  ManifestMemory,
  {
    /** Loads the catalog at `dir`, keeping each broken app's last good manifest. */
    readonly load: (
      dir: string
    ) => Effect.Effect<
      { readonly catalog: Catalog; readonly kept: ReadonlyArray<Kept> },
      Error,
      FileSystem.FileSystem | Path.Path
    >
  }
>()("archy/engine/ManifestMemory") {
  static readonly layer = (file: string) =>
    Layer.effect(
      ManifestMemory,
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const platform = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
        const text = yield* fs.readFileString(file).pipe(Effect.option)
        let initial: Record<string, ManifestSource> = {}
        if (text._tag === "Some") {
          const parsed = decode(text.value)
          // A corrupt memory file loses only the memory, never an app: start empty, say so.
          if (parsed._tag === "Success") initial = { ...parsed.success }
          else
            yield* Effect.logWarning(
              `${file} is unreadable, starting without last good manifests: ${parsed.failure.message}`
            )
        }
        const memory = yield* Ref.make<Record<string, ManifestSource>>(initial)
        const saved = yield* Ref.make(text._tag === "Some" ? text.value : "")

        const load = (dir: string) =>
          Effect.gen(function* () {
            const read = yield* readSources(dir)
            const remembered = yield* Ref.get(memory)
            const { catalog, kept, good } = withLastGood(read.sources, read.issues, remembered)
            const next = { ...remembered }
            for (const s of good) next[s.dirName] = s
            yield* Ref.set(memory, next)
            const json = `${JSON.stringify(next, null, 2)}\n`
            if (json !== (yield* Ref.get(saved))) {
              // A failed write (a full disk) keeps the memory in this process; next pass retries.
              yield* writeAtomic(file, new TextEncoder().encode(json), { mode: 0o600 }).pipe(
                Effect.provideContext(platform),
                Effect.andThen(Ref.set(saved, json)),
                Effect.catch((e) => Effect.logWarning(`cannot save last good manifests: ${e.message}`))
              )
            }
            return { catalog, kept }
          })
        return ManifestMemory.of({ load })
      })
    )
}
