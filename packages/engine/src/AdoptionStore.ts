/**
 * Adoption records. podman cannot add labels to an existing container, so adopting one (a
 * container with a name a manifest claims, created by the old scripts) is recorded here, in the
 * state dir, and the observer shows it to the plan with our labels as if it had them.
 */

import { labels, type ObservedContainer } from "@archy/core/Observed"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import type * as Path from "effect/Path"
import * as Schema from "effect/Schema"
import { writeAtomic } from "./AtomicFile.ts"

const Record_ = Schema.Struct({ app: Schema.String, container: Schema.String, specHash: Schema.String })
const Records = Schema.Record(Schema.String, Record_)
type Records = typeof Records.Type
const decodeRecords = Schema.decodeUnknownResult(Schema.fromJsonString(Records))

export class AdoptionStore extends Context.Service<
  AdoptionStore,
  {
    /** Shows adopted containers with our labels; records of vanished containers are ignored. */
    readonly overlay: (
      containers: ReadonlyArray<ObservedContainer>
    ) => Effect.Effect<ReadonlyArray<ObservedContainer>>
    readonly record: (
      containerId: string,
      entry: { readonly app: string; readonly container: string; readonly specHash: string }
    ) => Effect.Effect<void, Error>
  }
>()("archy/engine/AdoptionStore") {
  static readonly layer = (file: string) =>
    Layer.effect(
      AdoptionStore,
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const platform = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
        // A missing or unreadable file means nothing is adopted: the plan then adopts again,
        // which is safe (adoption never changes a container).
        const load = fs.readFileString(file).pipe(
          Effect.map((text) => {
            const r = decodeRecords(text)
            return r._tag === "Success" ? r.success : ({} as Records)
          }),
          Effect.orElseSucceed(() => ({}) as Records)
        )
        const overlay = (containers: ReadonlyArray<ObservedContainer>) =>
          Effect.map(load, (records) =>
            containers.map((c) => {
              const r = records[c.id]
              return r === undefined || c.labels[labels.app] !== undefined
                ? c
                : {
                    ...c,
                    labels: {
                      ...c.labels,
                      [labels.app]: r.app,
                      [labels.container]: r.container,
                      [labels.specHash]: r.specHash
                    }
                  }
            })
          )
        const record = Effect.fn("AdoptionStore.record")(function* (
          containerId: string,
          entry: { readonly app: string; readonly container: string; readonly specHash: string }
        ) {
          const records = yield* load
          const next = { ...records, [containerId]: entry }
          yield* writeAtomic(file, new TextEncoder().encode(`${JSON.stringify(next, null, 2)}\n`), {
            mode: 0o600
          }).pipe(Effect.provideContext(platform))
        })
        return AdoptionStore.of({ overlay, record })
      })
    )
}
