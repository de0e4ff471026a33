/**
 * The persisted selection on real files: the first start's defaults, written by a read, never
 * land over an install made at the same moment (the daemon's boot pass reads while the API
 * installs), and neither write fails on the other's temporary file.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { loadCatalog } from "@archy/core/Catalog"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { SelectionStore } from "../src/SelectionStore.ts"

const appsDir = new URL("../../../test/fixtures/apps/", import.meta.url).pathname

describe("SelectionStore", () => {
  it.live("a first-start read and an install at the same time: the install sticks", () =>
    Effect.gen(function* () {
      const catalog = yield* loadCatalog(appsDir)
      for (let round = 0; round < 20; round++) {
        const dir = mkdtempSync(join(tmpdir(), "archy-selection-"))
        const file = join(dir, "selection.json")
        yield* Effect.gen(function* () {
          const store = yield* SelectionStore
          yield* Effect.all(
            [
              store.get(catalog),
              store.update(catalog, (s) => ({ installed: [...s.installed, "fx-web"], stopped: s.stopped }))
            ],
            { concurrency: "unbounded" }
          )
          const saved = JSON.parse(readFileSync(file, "utf8")) as { installed: ReadonlyArray<string> }
          assert.include(saved.installed, "fx-web", `round ${round}`)
          assert.include((yield* store.get(catalog)).installed, "fx-web")
        }).pipe(
          Effect.provide(SelectionStore.layer(file)),
          Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
        )
      }
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
