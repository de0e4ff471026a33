/**
 * Reads a catalog directory (`<dir>/<id>/manifest.yml`) from the real disk into the texts the
 * simulation seeds its in-memory disk with. Only this read touches the host.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import type { ManifestText } from "./Simulation.ts"

export const readManifests = (dir: string): ReadonlyArray<ManifestText> =>
  readdirSync(dir)
    .sort()
    .filter((id) => existsSync(join(dir, id, "manifest.yml")))
    .map((id) => ({ id, text: readFileSync(join(dir, id, "manifest.yml"), "utf8") }))
