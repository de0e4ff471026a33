/**
 * `archy doctor`: read-only checks (containers.conf's host_containers_internal_ip, the
 * archipelago network, host.archipelago in every managed container, no secret value in any
 * managed container's env, args or labels). One line per finding, with how to fix each failure;
 * exit 1 when any check fails. Secret values are never printed.
 */
import { diagnose } from "@archy/engine/Doctor"
import * as Console from "effect/Console"
import { Command, Flag } from "effect/cli"
import * as Effect from "effect/Effect"
import { nodeConfigOf, nodeFlags, nodeLayer } from "../NodeOptions.ts"
import { Reported } from "../Reported.ts"

export const doctor = Command.make(
  "doctor",
  {
    ...nodeFlags,
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print {findings:[{check,ok,message,fix}]}"),
      Flag.withDefault(false)
    )
  },
  Effect.fn(function* (options) {
    const findings = yield* diagnose({ network: nodeConfigOf(options).network }).pipe(
      Effect.provide(nodeLayer(options))
    )
    if (options.json) yield* Console.log(JSON.stringify({ findings }, null, 2))
    else {
      for (const f of findings) {
        yield* Console.log(`${f.ok ? "ok  " : "FAIL"}  ${f.check.padEnd(15)}  ${f.message}`)
        if (!f.ok && f.fix !== undefined) yield* Console.log(`${" ".repeat(23)}fix: ${f.fix}`)
      }
    }
    if (findings.some((f) => !f.ok)) return yield* new Reported()
  })
).pipe(Command.withDescription("Check podman's configuration, the network and secret exposure (read-only)"))
