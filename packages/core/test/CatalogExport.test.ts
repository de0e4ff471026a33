import { assert, describe, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import * as Yaml from "yaml"
import { catalogFromSources, type ManifestSource } from "../src/Catalog.ts"
import { CatalogExport, toExport, toJsonText } from "../src/CatalogExport.ts"
import { readCatalogSources, repoAppsDir } from "./catalogSources.ts"

const source = (id: string, top: Record<string, unknown> = {}): ManifestSource => ({
  file: `/catalog/${id}/manifest.yml`,
  dir: `/catalog/${id}`,
  dirName: id,
  text: Yaml.stringify({
    id,
    name: `The ${id}`,
    version: "1.0.0",
    description: `What ${id} does`,
    category: "system",
    ...top,
    containers: [{ name: `archy-${id}`, image: "docker.io/library/nginx:1.27.5-alpine" }]
  })
})

describe("catalog export", () => {
  it("lists apps by id with their dependencies, capabilities, conflicts (both ways) and containers", () => {
    const sources = [
      source("web", {
        dependencies: [{ app: "db", condition: "healthy" }, { app: "cache" }],
        defaultInstalled: true
      }),
      source("db", { provides: ["sql"], conflicts: ["other-db"] }),
      source("other-db", { provides: ["sql"] }),
      source("cache")
    ]
    const exported = toExport(catalogFromSources(sources))
    assert.deepStrictEqual(exported, {
      apps: [
        {
          id: "cache",
          name: "The cache",
          description: "What cache does",
          category: "system",
          version: "1.0.0",
          defaultInstalled: false,
          dependencies: [],
          provides: [],
          conflicts: [],
          containers: ["archy-cache"]
        },
        {
          id: "db",
          name: "The db",
          description: "What db does",
          category: "system",
          version: "1.0.0",
          defaultInstalled: false,
          dependencies: [],
          provides: ["sql"],
          conflicts: ["other-db"],
          containers: ["archy-db"]
        },
        {
          id: "other-db",
          name: "The other-db",
          description: "What other-db does",
          category: "system",
          version: "1.0.0",
          defaultInstalled: false,
          dependencies: [],
          provides: ["sql"],
          conflicts: ["db"],
          containers: ["archy-other-db"]
        },
        {
          id: "web",
          name: "The web",
          description: "What web does",
          category: "system",
          version: "1.0.0",
          defaultInstalled: true,
          dependencies: [
            { app: "cache", condition: "started" },
            { app: "db", condition: "healthy" }
          ],
          provides: [],
          conflicts: [],
          containers: ["archy-web"]
        }
      ]
    })
    // The same bytes whatever order the directory listed the apps in.
    assert.strictEqual(
      toJsonText(catalogFromSources([...sources].reverse())),
      toJsonText(catalogFromSources(sources))
    )
  })

  it("exports the repo's catalog in the schema the dashboard decodes", () => {
    const catalog = catalogFromSources(readCatalogSources(repoAppsDir))
    const text = toJsonText(catalog)
    assert.isTrue(text.endsWith("}\n"))
    const decoded = Schema.decodeUnknownSync(CatalogExport)(JSON.parse(text))
    assert.strictEqual(decoded.apps.length, catalog.apps.length)
    const knots = decoded.apps.find((a) => a.id === "bitcoin-knots")!
    assert.deepStrictEqual(
      [knots.provides, knots.conflicts, knots.defaultInstalled],
      [["bitcoind"], ["bitcoin-core"], true]
    )
  })
})
