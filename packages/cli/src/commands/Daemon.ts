/**
 * `archy daemon`: the node's long-running service (systemd runs it; see image-recipe/). Boot
 * pass, then a pass every `--interval` seconds and shortly after podman events; health checks;
 * crash backoff; the JSON-RPC API on 127.0.0.1:`--port` with a bearer token from
 * `<state-dir>/secrets/api-token`. SIGTERM or SIGINT: the action under way finishes, exit 0.
 */
import { run } from "@archy/daemon/main"
import * as Console from "effect/Console"
import { Command, Flag } from "effect/cli"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import { resolveAppsDir } from "../CatalogInput.ts"
import { apiPortOf, nodeConfigOf, nodeFlags, nodeLayer, stateDirOf } from "../NodeOptions.ts"
import { otaOptionsOf, updateFlags, verifyFlags } from "../UpdateOptions.ts"

const envNumber = (name: string): number | undefined => {
  const v = process.env[name]
  return v === undefined || v === "" || Number.isNaN(Number(v)) ? undefined : Number(v)
}

export const daemon = Command.make(
  "daemon",
  {
    ...nodeFlags,
    ...updateFlags,
    ...verifyFlags,
    interval: Flag.Int("interval").pipe(
      Flag.withDescription("Seconds between timer passes (env ARCHY_INTERVAL; default 30)"),
      Flag.optional
    ),
    debounce: Flag.Int("debounce-ms").pipe(
      Flag.withDescription("Quiet time after a podman event before its pass (default 300)"),
      Flag.withDefault(300)
    ),
    noEvents: Flag.Boolean("no-events").pipe(
      Flag.withDescription("Do not react to podman events: the timer alone (for comparison)"),
      Flag.withDefault(false)
    ),
    jsonLogs: Flag.Boolean("json-logs").pipe(
      Flag.withDescription("Log JSON lines (env ARCHY_LOG_FORMAT=json)"),
      Flag.withDefault(false)
    )
  },
  Effect.fn(function* (options) {
    const appsDir = yield* resolveAppsDir(options.apps)
    const json = options.jsonLogs || process.env.ARCHY_LOG_FORMAT === "json"
    yield* run({
      appsDir,
      stateDir: stateDirOf(options),
      node: nodeConfigOf(options),
      port: apiPortOf(options),
      interval: Duration.seconds(
        Option.getOrUndefined(options.interval) ?? envNumber("ARCHY_INTERVAL") ?? 30
      ),
      debounce: Duration.millis(options.debounce),
      healthTick: Duration.seconds(1),
      events: !options.noEvents,
      ota: otaOptionsOf(options),
      onReady: ({ port }) =>
        Console.error(`archy daemon: API on 127.0.0.1:${port}; SIGTERM or Ctrl-C stops it`)
    }).pipe(
      Effect.provide(nodeLayer(options)),
      Effect.provide(Logger.layer([json ? Logger.consoleJson : Logger.consoleLogFmt]))
    )
  })
).pipe(Command.withDescription("Run the node daemon: reconcile continuously, heal, serve the API"))
