/**
 * `archy catalog export [--apps DIR] [--out FILE]`: the catalog as JSON for the web dashboard
 * (see core's CatalogExport). A catalog with any bad manifest is not exported: its problems go to
 * stderr, one per line, the exit code is 1 and no file is written, so the dashboard never reads
 * a catalog with apps silently missing. The file is replaced atomically.
 */
import { CatalogExport } from "@archy/core"
import { writeAtomic } from "@archy/engine/AtomicFile"
import * as Console from "effect/Console"
import { Command, Flag } from "effect/cli"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { loadCatalogOrReport, resolveAppsDir } from "../CatalogInput.ts"
import { Reported } from "../Reported.ts"

const exportCatalog = Command.make(
  "export",
  {
    apps: Flag.String("apps").pipe(
      Flag.withDescription("Catalog directory (env ARCHY_APPS_DIR; default: the apps/ of this install)"),
      Flag.optional
    ),
    out: Flag.String("out").pipe(
      Flag.withDescription("File to write (replaced atomically, mode 0644); default: standard output"),
      Flag.optional
    )
  },
  Effect.fn(function* ({ apps, out }) {
    const appsDir = yield* resolveAppsDir(apps)
    const catalog = yield* loadCatalogOrReport(appsDir)
    if (catalog.issues.length > 0) {
      yield* Console.error(`${catalog.issues.length} problem(s) in ${appsDir}: nothing exported`)
      return yield* new Reported()
    }
    const text = CatalogExport.toJsonText(catalog)
    if (Option.isNone(out)) return yield* Console.log(text.trimEnd())
    yield* writeAtomic(out.value, new TextEncoder().encode(text), { mode: 0o644 }).pipe(
      Effect.catchTag("AtomicWriteError", (e) =>
        Console.error(`archy catalog export: ${e.message}`).pipe(Effect.andThen(Effect.fail(new Reported())))
      )
    )
    yield* Console.log(`${catalog.apps.length} app(s) exported to ${out.value}`)
  })
).pipe(Command.withDescription("Write the catalog as JSON for the web dashboard"))

export const catalog = Command.make("catalog").pipe(
  Command.withDescription("The app catalog"),
  Command.withSubcommands([exportCatalog])
)
