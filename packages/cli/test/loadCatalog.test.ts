import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Catalog } from "@archy/core"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { readCatalogSources } from "../../core/test/catalogSources.ts"

const appsDir = fileURLToPath(new URL("../../../apps", import.meta.url))

const manifestText = (id: string, extra = "") => `id: ${id}
name: ${id}
version: 1.0.0
description: The ${id} app
category: system
containers:
  - name: ${id}
    image: docker.io/library/nginx:1.27.5-alpine
${extra}`

/** Runs `f` with a fresh temp directory, removed afterwards whatever happens. */
const withTempDir = <A, E, R>(f: (dir: string) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "archy-catalog-"))),
    f,
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

describe("loadCatalog on the real file system", () => {
  it.effect("loads the repo's apps/ with no issues", () =>
    Effect.gen(function* () {
      const catalog = yield* Catalog.loadCatalog(appsDir)
      assert.deepStrictEqual(catalog.issues, [])
      // The same apps, in the same order, as the pure loader reading the same files.
      const pure = Catalog.catalogFromSources(readCatalogSources(appsDir))
      assert.deepStrictEqual(pure.issues, [])
      assert.isAtLeast(catalog.apps.length, 17)
      assert.deepStrictEqual(
        catalog.apps.map((a) => [a.manifest.id, a.templates]),
        pure.apps.map((a) => [a.manifest.id, a.templates])
      )
      for (const app of catalog.apps) {
        assert.strictEqual(app.dir, join(appsDir, app.manifest.id))
        assert.strictEqual(app.file, join(appsDir, app.manifest.id, "manifest.yml"))
      }
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("loads valid directories and reports one without manifest.yml", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        for (const id of ["alpha", "beta", "empty", ".hidden"]) mkdirSync(join(dir, id))
        writeFileSync(join(dir, "alpha", "manifest.yml"), manifestText("alpha"))
        writeFileSync(
          join(dir, "beta", "manifest.yml"),
          manifestText("beta", "    mounts:\n      - { source: /var/lib, target: /data }")
        )
        writeFileSync(join(dir, "empty", "README.md"), "nothing here\n")
        writeFileSync(join(dir, "README.md"), "# catalog\n")

        const catalog = yield* Catalog.loadCatalog(dir)
        assert.deepStrictEqual(
          catalog.apps.map((a) => a.manifest.id),
          ["alpha"]
        )
        assert.strictEqual(catalog.apps[0]!.file, join(dir, "alpha", "manifest.yml"))
        assert.deepStrictEqual(catalog.issues, [
          {
            file: join(dir, "empty", "manifest.yml"),
            path: "",
            message: "cannot read manifest.yml (every app directory needs one)"
          },
          {
            file: join(dir, "beta", "manifest.yml"),
            path: "containers[0].mounts[0].source",
            message: `expected a path inside the app's data root (relative, no ".."), got "/var/lib"`
          }
        ])
      })
    ).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("fails when the catalog directory does not exist", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const error = yield* Catalog.loadCatalog(join(dir, "nowhere")).pipe(Effect.flip)
        assert.strictEqual(error._tag, "PlatformError")
      })
    ).pipe(Effect.provide(NodeServices.layer))
  )
})
