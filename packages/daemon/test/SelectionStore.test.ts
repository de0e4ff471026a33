/**
 * The persisted selection on real files: the first start's defaults, written by a read, never
 * land over an install made at the same moment (the daemon's boot pass reads while the API
 * installs), and neither write fails on the other's temporary file; defaults from a catalog
 * that did not load whole are not saved.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Catalog, catalogFromSources, loadCatalog } from "@archy/core/Catalog"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { SelectionStore } from "../src/SelectionStore.ts"

const appsDir = new URL("../../../test/fixtures/apps/", import.meta.url).pathname

const manifest = (id: string) => `id: ${id}
name: ${id}
version: 1.0.0
description: a test app
category: system
defaultInstalled: true
containers:
  - name: ${id}
    image: localhost/archy-test/busybox:1
`

const catalogOf = (ids: ReadonlyArray<string>): Catalog =>
  catalogFromSources(
    ids.map((id) => ({
      file: `/apps/${id}/manifest.yml`,
      dir: `/apps/${id}`,
      dirName: id,
      text: manifest(id)
    }))
  )

const withStore = <A, E>(f: (file: string) => Effect.Effect<A, E, SelectionStore>) =>
  Effect.gen(function* () {
    const dir = mkdtempSync(join(tmpdir(), "archy-selection-"))
    const file = join(dir, "selection.json")
    return yield* f(file).pipe(
      Effect.provide(SelectionStore.layer(file)),
      Effect.provide(NodeServices.layer),
      Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    )
  })

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

  // Found by the simulation (seed 15): a manifest unreadable for a moment on the very first
  // start made the saved defaults leave its app out, uninstalling it for good.
  it.effect("on first start, defaults from a catalog with issues are used but not saved", () =>
    withStore((file) =>
      Effect.gen(function* () {
        const store = yield* SelectionStore
        const whole = catalogOf(["a", "b"])
        const partial: Catalog = {
          apps: whole.apps.filter((a) => a.manifest.id === "a"),
          issues: [{ file: "/apps/b/manifest.yml", path: "", message: "cannot read manifest.yml" }]
        }
        const first = yield* store.get(partial)
        assert.deepStrictEqual(first.installed, ["a"])
        assert.isFalse(existsSync(file))
        const next = yield* store.get(whole)
        assert.deepStrictEqual([...next.installed].sort(), ["a", "b"])
        assert.deepStrictEqual(JSON.parse(readFileSync(file, "utf8")).installed.sort(), ["a", "b"])
        // Saved now: a later partial catalog no longer changes it.
        assert.deepStrictEqual([...(yield* store.get(partial)).installed].sort(), ["a", "b"])
      })
    )
  )
})
