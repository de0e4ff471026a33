/**
 * How the CLI finds and loads a catalog: `--apps DIR`, else $ARCHY_APPS_DIR, else the `apps/`
 * directory of the install this CLI runs from. Prints every manifest issue to stderr.
 */
import { Catalog, Manifest } from "@archy/core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Path from "effect/Path"
import { Reported } from "./Reported.ts"

export const defaultAppsDir = (): string =>
  process.env.ARCHY_APPS_DIR ??
  // bin/archy runs a bundle elsewhere in the tree: it says where the install's root is.
  (process.env.ARCHY_HOME !== undefined
    ? `${process.env.ARCHY_HOME}/apps`
    : new URL("../../../apps", import.meta.url).pathname)

export const resolveAppsDir = (flag: Option.Option<string>) =>
  Effect.map(Path.Path, (path) => path.resolve(Option.getOrElse(flag, defaultAppsDir)))

/** Loads the catalog; an unreadable directory is reported and ends the command with exit 1. */
export const loadCatalogOrReport = Effect.fn("Cli.loadCatalog")(function* (dir: string) {
  const catalog = yield* Catalog.loadCatalog(dir).pipe(
    Effect.catchTag("PlatformError", (e) =>
      Effect.andThen(
        Console.error(`archy: cannot read the catalog at ${dir}: ${e.message}`),
        Effect.fail(new Reported())
      )
    )
  )
  for (const issue of catalog.issues) yield* Console.error(Manifest.formatIssue(issue))
  return catalog
})
