/**
 * `archy validate [DIR]`: decodes and checks every manifest of a catalog. Exit 0 when all are
 * valid; otherwise one line per problem (file, path inside it, what was expected) and exit 1.
 */
import * as Console from "effect/Console"
import { Argument, Command } from "effect/cli"
import * as Effect from "effect/Effect"
import { loadCatalogOrReport, resolveAppsDir } from "../CatalogInput.ts"
import { Reported } from "../Reported.ts"

export const validate = Command.make(
  "validate",
  {
    dir: Argument.String("dir").pipe(
      Argument.withDescription("Catalog directory (default: the apps/ of this install)"),
      Argument.optional
    )
  },
  Effect.fn(function* ({ dir }) {
    const appsDir = yield* resolveAppsDir(dir)
    const catalog = yield* loadCatalogOrReport(appsDir)
    if (catalog.issues.length > 0) {
      yield* Console.error(
        `${catalog.issues.length} problem(s); ${catalog.apps.length} app(s) valid in ${appsDir}`
      )
      return yield* new Reported()
    }
    yield* Console.log(`${catalog.apps.length} app(s) valid in ${appsDir}`)
  })
).pipe(Command.withDescription("Check every manifest of a catalog"))
