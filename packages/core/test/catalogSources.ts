/**
 * Reads a catalog directory into `ManifestSource`s synchronously, as `loadCatalog` does (the
 * manifest plus the plain files next to it, its templates), for tests that build catalogs with
 * the pure `catalogFromSources`.
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { ManifestSource } from "../src/Catalog.ts"

/** This repository's app catalog. */
export const repoAppsDir = fileURLToPath(new URL("../../../apps/", import.meta.url))

export const readCatalogSources = (
  dir: string,
  name: (dirName: string) => string = (dirName) => join(dir, dirName, "manifest.yml")
): ReadonlyArray<ManifestSource> =>
  readdirSync(dir)
    .filter((dirName) => statSync(join(dir, dirName)).isDirectory())
    .sort()
    .map((dirName) => ({
      file: name(dirName),
      dir: join(dir, dirName),
      dirName,
      text: readFileSync(join(dir, dirName, "manifest.yml"), "utf8"),
      templates: new Map(
        readdirSync(join(dir, dirName))
          .filter((f) => f !== "manifest.yml" && statSync(join(dir, dirName, f)).isFile())
          .map((f) => [f, readFileSync(join(dir, dirName, f), "utf8")] as const)
      )
    }))
