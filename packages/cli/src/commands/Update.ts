/**
 * `archy update check|apply|status|rollback`: over-the-air updates of this node. Through the
 * daemon when it runs (it applies, restarts itself and verifies the new release at boot);
 * otherwise directly on the install dir (the next start of the daemon then verifies).
 * `--json` prints the result as JSON.
 */
import * as Install from "@archy/ota/Install"
import { ServiceManager } from "@archy/ota/ServiceManager"
import * as Updater from "@archy/ota/Updater"
import { countBoot, defaultMaxBoots } from "@archy/ota/Verifier"
import * as Console from "effect/Console"
import { Command, Flag } from "effect/cli"
import * as Effect from "effect/Effect"
import { call } from "../DaemonClient.ts"
import { daemonOf, nodeFlags } from "../NodeOptions.ts"
import { Reported } from "../Reported.ts"
import { installDirOf, mirrorOptionsOf, type UpdateOptions, updateFlags } from "../UpdateOptions.ts"

const flags = {
  ...nodeFlags,
  ...updateFlags,
  json: Flag.Boolean("json").pipe(Flag.withDescription("Print JSON"), Flag.withDefault(false))
}

type Verb = "check" | "apply" | "status" | "rollback"

const run = (verb: Verb, options: UpdateOptions & Parameters<typeof daemonOf>[0]) =>
  Effect.gen(function* () {
    const daemon = yield* daemonOf(options)
    const report = (e: { readonly message: string }) =>
      Effect.andThen(Console.error(`archy update ${verb}: ${e.message}`), Effect.fail(new Reported()))
    if (daemon !== undefined)
      return yield* call(`update.${verb}`, undefined, daemon).pipe(Effect.catch(report))
    return yield* Effect.gen(function* () {
      const install = yield* Install.make(installDirOf(options))
      const updater = yield* Updater.make(install, mirrorOptionsOf(options))
      return yield* updater[verb] as Effect.Effect<unknown, Updater.UpdateError>
    }).pipe(Effect.catch(report), Effect.provide(ServiceManager.layerNone))
  })

const str = (u: unknown): string => (typeof u === "string" ? u : u === undefined ? "none" : JSON.stringify(u))

/** Human lines for a result; the shapes are those of @archy/ota's Updater. */
const describe = (verb: Verb, r: Record<string, unknown>): ReadonlyArray<string> => {
  switch (verb) {
    case "check":
      return [
        r.available === true
          ? `update available: ${str(r.current)} -> ${str(r.latest)} (from ${str(r.mirror)})`
          : `up to date: ${str(r.current)} (the mirrors offer ${str(r.latest)})`
      ]
    case "apply":
      return [
        `applied ${str(r.from)} -> ${str(r.to)} from ${str(r.mirror)}; the daemon restarts and verifies it`
      ]
    case "rollback":
      return [`rolled back ${str(r.from)} -> ${str(r.to)}; the daemon restarts`]
    case "status": {
      const lines = [`install:  ${str(r.installDir)}`, `current:  ${str(r.current)}`]
      if (r.running !== undefined && r.running !== r.current) lines.push(`running:  ${str(r.running)}`)
      lines.push(`previous: ${str(r.previous)}`)
      const p = r.pending as Record<string, unknown> | undefined
      if (p !== undefined)
        lines.push(
          `pending:  ${str(p.from)} -> ${str(p.to)} since ${str(p.at)}, being verified (boot ${str(p.boots)})`
        )
      const l = r.last as Record<string, unknown> | undefined
      if (l === undefined) lines.push("last:     no update yet")
      else {
        lines.push(`last:     ${str(l.outcome)} ${str(l.from)} -> ${str(l.to)} at ${str(l.at)}`)
        const f = l.failure as Record<string, unknown> | undefined
        if (f !== undefined)
          lines.push(
            `why:      ${str(f.probe)}${f.target !== undefined ? ` ${str(f.target)}` : ""}: ${f.status !== undefined ? `HTTP ${str(f.status)}, ` : ""}${str(f.error)}`
          )
        else if (l.reason !== undefined) lines.push(`why:      ${str(l.reason)}`)
      }
      return lines
    }
  }
}

const verb = (name: Verb, description: string) =>
  Command.make(
    name,
    flags,
    Effect.fn(function* (options) {
      const result = yield* run(name, options)
      if (options.json) yield* Console.log(JSON.stringify(result, null, 2))
      else
        for (const line of describe(name, (result ?? {}) as Record<string, unknown>)) yield* Console.log(line)
    })
  ).pipe(Command.withDescription(description))

/**
 * `archy update boot`: run before each daemon start (image-recipe/archy-boot, the unit's
 * ExecStartPre) with the previous release's archy while an update is pending: counts the start
 * and rolls back when the new release keeps failing to reach a verdict. Never fails the start.
 */
const boot = Command.make(
  "boot",
  { installDir: updateFlags.installDir },
  Effect.fn(function* (options) {
    const dir = installDirOf(options)
    const decision = yield* Effect.gen(function* () {
      const install = yield* Install.make(dir)
      return yield* countBoot(install, defaultMaxBoots)
    }).pipe(Effect.catch((e) => Effect.as(Console.error(`archy update boot: ${e.message}`), undefined)))
    if (decision === undefined || decision._tag === "NoUpdate") return
    const m = "marker" in decision ? decision.marker : undefined
    if (decision._tag === "RollBack")
      yield* Console.error(
        `archy update boot: ${m?.to} did not reach a verdict in ${defaultMaxBoots} starts; rolled back to ${m?.from}`
      )
    else yield* Console.error(`archy update boot: start ${m?.boots} with ${m?.from} -> ${m?.to} pending`)
  })
).pipe(
  Command.withDescription("Count a daemon start while an update is pending (the service's ExecStartPre)")
)

export const update = Command.make("update").pipe(
  Command.withDescription("Over-the-air updates of this node: check, apply, status, rollback"),
  Command.withSubcommands([
    verb("check", "Ask the update mirrors for the newest signed release"),
    verb(
      "apply",
      "Fetch, verify and install the newest release, then restart into it (it must prove itself)"
    ),
    verb("status", "The current and previous release, a pending verification, the last result and why"),
    verb("rollback", "Go back to the kept previous release and restart"),
    boot
  ])
)
