/**
 * The catalog as the web dashboard reads it (`archy catalog export`): each app's identity, what
 * it needs, offers and excludes, and its containers, in a fixed shape and order so the exported
 * file only changes when the catalog does. Pure; the CLI writes it.
 */
import * as Schema from "effect/Schema"
import { type Catalog, conflictsWith } from "./Catalog.ts"
import { categories } from "./Manifest.ts"

export const ExportedApp = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  description: Schema.String,
  category: Schema.Literals(categories),
  version: Schema.String,
  /** Installed on a fresh node. */
  defaultInstalled: Schema.Boolean,
  /** App ids or capabilities (`bitcoind`), with what the app waits for. */
  dependencies: Schema.Array(
    Schema.Struct({ app: Schema.String, condition: Schema.Literals(["started", "healthy"]) })
  ),
  /** Capabilities it offers to dependants. */
  provides: Schema.Array(Schema.String),
  /** Apps that cannot be installed next to it, whichever side declared it. */
  conflicts: Schema.Array(Schema.String),
  /** Its podman container names. */
  containers: Schema.Array(Schema.String)
})
export type ExportedApp = typeof ExportedApp.Type

export const CatalogExport = Schema.Struct({ apps: Schema.Array(ExportedApp) })
export type CatalogExport = typeof CatalogExport.Type

const sorted = (values: ReadonlyArray<string>): Array<string> => [...values].sort()

/** The valid apps of a catalog, by id. */
export const toExport = (catalog: Pick<Catalog, "apps">): CatalogExport => {
  const manifests = catalog.apps.map((a) => a.manifest).sort((a, b) => (a.id < b.id ? -1 : 1))
  return {
    apps: manifests.map((m) => ({
      id: m.id,
      name: m.name,
      description: m.description,
      category: m.category,
      version: m.version,
      defaultInstalled: m.defaultInstalled === true,
      dependencies: (m.dependencies ?? [])
        .map((d) => ({ app: d.app, condition: d.condition ?? ("started" as const) }))
        .sort((a, b) => (a.app < b.app ? -1 : 1)),
      provides: sorted(m.provides ?? []),
      conflicts: sorted(manifests.filter((o) => o.id !== m.id && conflictsWith(m, o)).map((o) => o.id)),
      containers: m.containers.map((c) => c.name)
    }))
  }
}

/** The export as the file holds it: 2-space JSON and a final newline. */
export const toJsonText = (catalog: Pick<Catalog, "apps">): string =>
  `${JSON.stringify(toExport(catalog), null, 2)}\n`
