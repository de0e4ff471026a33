/**
 * The pure core of the orchestrator: manifests and the catalog, Desired and Observed, the
 * Action vocabulary, `plan`, and the config renderers. Nothing here talks to podman or the disk
 * except `Catalog.loadCatalog`, which reads through Effect's FileSystem.
 */
export * as Action from "./Action.ts"
export * as Catalog from "./Catalog.ts"
export * as CatalogExport from "./CatalogExport.ts"
export * as Desired from "./Desired.ts"
export * as Hash from "./Hash.ts"
export * as Manifest from "./Manifest.ts"
export * as Observed from "./Observed.ts"
export * as Plan from "./Plan.ts"
export * as Renderers from "./Render/Renderers.ts"
export * as Upgrade from "./Upgrade.ts"
