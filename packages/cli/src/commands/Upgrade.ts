/**
 * `archy upgrade APP [--image REF] [--container NAME]` and `archy rollback APP`: through the
 * daemon when one runs for the state dir (`package.update`, `package.rollback`), else (or with
 * `--direct`) on podman directly with passes of their own. An upgrade recreates the app's
 * containers on the new image (the manifest's where they run another, or REF), waits for the
 * health gate, and goes back to the previous image when it fails; exit 1 then, with the reason.
 */
import { actionView, type UpgradeOutcome } from "@archy/daemon/Operations"
import type { HealthBook } from "@archy/engine/Health"
import { reconcileUntilSettled } from "@archy/engine/Reconciler"
import * as Upgrade from "@archy/engine/Upgrade"
import type { UpgradeStore } from "@archy/engine/UpgradeStore"
import type { PodmanRuntime } from "@archy/podman/PodmanRuntime"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import { Argument, Command, Flag } from "effect/cli"
import * as Effect from "effect/Effect"
import type * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Path from "effect/Path"
import { loadCatalogOrReport, resolveAppsDir } from "../CatalogInput.ts"
import { call } from "../DaemonClient.ts"
import { daemonOf, type NodeOptions, nodeConfigOf, nodeFlags, nodeLayer } from "../NodeOptions.ts"
import { Reported } from "../Reported.ts"
import { selectionOf } from "../Selection.ts"
import { readSettings } from "../SettingsInput.ts"

const app = Argument.String("app").pipe(Argument.withDescription("The app's id"))

const show = (o: UpgradeOutcome) =>
  Effect.gen(function* () {
    for (const a of o.actions) {
      yield* Console.log(
        `${(a.outcome ?? "").padEnd(8)} ${a.kind} ${a.target}: ${a.cause}${a.detail !== undefined ? ` (${a.detail})` : ""}`
      )
    }
    for (const c of o.changes) yield* Console.log(`${c.container}: ${c.from} -> ${c.to}`)
    yield* Console.log(`${o.id}: ${o.outcome}: ${o.reason}`)
  })

/** Shows the outcome; a failed upgrade ends the command with exit 1. */
const print = (o: UpgradeOutcome) =>
  Effect.gen(function* () {
    yield* show(o)
    if (o.outcome === "failed") return yield* new Reported()
  })

const viewOf = (r: Upgrade.UpgradeResult): UpgradeOutcome => ({
  id: r.app,
  outcome: r.outcome,
  changes: r.changes,
  reason: r.reason,
  actions: r.actions.map(actionView)
})

const reportFailure = (e: { readonly message: string }) =>
  Effect.andThen(Console.error(`archy: ${e.message}`), Effect.fail(new Reported()))

/** Runs `f` on podman directly: the catalog's default selection, passes of this process. */
const direct = <A>(
  options: NodeOptions,
  app: string,
  f: (
    ctx: Upgrade.UpgradeContext<unknown>
  ) => Effect.Effect<A, Upgrade.UpgradeError, PodmanRuntime | UpgradeStore | HealthBook>
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const catalog = yield* loadCatalogOrReport(yield* resolveAppsDir(options.apps))
      // The operator's settings, so a direct pass renders what the daemon's would.
      const settings = yield* readSettings(options)
      const input = { catalog, selection: selectionOf(catalog), node: nodeConfigOf(options), settings }
      const platform = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
      const services = Context.merge(platform, yield* Layer.build(nodeLayer(options)))
      const ctx: Upgrade.UpgradeContext<unknown> = {
        ...input,
        pass: () =>
          reconcileUntilSettled(input).pipe(
            Effect.map((r) => r.reports),
            Effect.provideContext(services)
          )
      }
      // No daemon drives it: an upgrade left pending here was stopped midway. Judge it first.
      const leftover = yield* Upgrade.resume(ctx, app).pipe(
        Effect.catch(reportFailure),
        Effect.provideContext(services)
      )
      if (leftover !== undefined) {
        yield* Console.log(`an earlier upgrade of ${app} was left pending; judged it again:`)
        yield* show(viewOf(leftover))
      }
      return yield* f(ctx).pipe(Effect.catch(reportFailure), Effect.provideContext(services))
    })
  )

export const upgrade = Command.make(
  "upgrade",
  {
    ...nodeFlags,
    app,
    image: Flag.String("image").pipe(
      Flag.withDescription("The image to run (default: the manifest's, where the container runs another)"),
      Flag.optional
    ),
    container: Flag.String("container").pipe(
      Flag.withDescription("Upgrade only this container of the app (needed with --image for several)"),
      Flag.optional
    )
  },
  Effect.fn(function* (options) {
    const image = Option.getOrUndefined(options.image)
    const container = Option.getOrUndefined(options.container)
    const running = yield* daemonOf(options)
    if (running !== undefined) {
      const result = (yield* call(
        "package.update",
        {
          id: options.app,
          ...(image !== undefined ? { image } : {}),
          ...(container !== undefined ? { container } : {})
        },
        running
      ).pipe(Effect.catch(reportFailure))) as UpgradeOutcome
      return yield* print(result)
    }
    const result = yield* direct(options, options.app, (ctx) =>
      Upgrade.upgrade(ctx, {
        app: options.app,
        ...(image !== undefined ? { image } : {}),
        ...(container !== undefined ? { container } : {})
      })
    )
    return yield* print(viewOf(result))
  })
).pipe(
  Command.withDescription(
    "Recreate an app's containers on a new image; go back to the previous one when it does not get healthy"
  )
)

export const rollback = Command.make(
  "rollback",
  { ...nodeFlags, app },
  Effect.fn(function* (options) {
    const running = yield* daemonOf(options)
    if (running !== undefined) {
      const result = (yield* call("package.rollback", { id: options.app }, running).pipe(
        Effect.catch(reportFailure)
      )) as UpgradeOutcome
      return yield* print(result)
    }
    const result = yield* direct(options, options.app, (ctx) => Upgrade.rollback(ctx, options.app))
    return yield* print(viewOf(result))
  })
).pipe(Command.withDescription("Go back to the images an app ran before its last upgrade"))
