/**
 * Reads a catalog directory (`<dir>/<id>/manifest.yml` and the files beside it: templates, build
 * contexts) from the real disk into the texts the simulation seeds its in-memory disk with. Only
 * this read touches the host.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { join, relative } from "node:path"
import type { ManifestText } from "./Simulation.ts"

const filesUnder = (
  root: string,
  dir: string
): ReadonlyArray<{ readonly path: string; readonly text: string }> =>
  readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const full = join(dir, entry)
      const info = statSync(full)
      if (info.isDirectory()) return filesUnder(root, full)
      if (!info.isFile() || entry === "manifest.yml" || info.size > 1_000_000) return []
      return [{ path: relative(root, full), text: readFileSync(full, "utf8") }]
    })

export const readManifests = (dir: string): ReadonlyArray<ManifestText> =>
  readdirSync(dir)
    .sort()
    .filter((id) => existsSync(join(dir, id, "manifest.yml")))
    .map((id) => ({
      id,
      text: readFileSync(join(dir, id, "manifest.yml"), "utf8"),
      files: filesUnder(join(dir, id), join(dir, id))
    }))
