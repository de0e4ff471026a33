/**
 * The `archy` executable: parses arguments and runs one command. Failures a command already
 * explained exit 1 quietly; anything else is printed in full.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import { Command } from "effect/cli"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Runtime from "effect/Runtime"
import { apply } from "./commands/Apply.ts"
import { catalog } from "./commands/Catalog.ts"
import { configure } from "./commands/Configure.ts"
import { daemon } from "./commands/Daemon.ts"
import { doctor } from "./commands/Doctor.ts"
import { plan } from "./commands/Plan.ts"
import { release } from "./commands/Release.ts"
import { status } from "./commands/Status.ts"
import { update } from "./commands/Update.ts"
import { rollback, upgrade } from "./commands/Upgrade.ts"
import { validate } from "./commands/Validate.ts"
import { Reported } from "./Reported.ts"

const archy = Command.make("archy").pipe(
  Command.withDescription("Archipelago node orchestrator"),
  Command.withSubcommands([
    validate,
    plan,
    apply,
    status,
    daemon,
    doctor,
    upgrade,
    rollback,
    release,
    configure,
    update,
    catalog
  ])
)

const program = Command.run(archy, { version: "0.1.0" }).pipe(
  Effect.tapCause((cause) =>
    Cause.hasFails(cause) && Cause.squash(cause) instanceof Reported
      ? Effect.void
      : Console.error(Cause.pretty(cause))
  ),
  Effect.provide(NodeServices.layer)
)

// The daemon stopped by SIGTERM or SIGINT has done its job: exit 0, as systemd expects.
// Other commands keep the usual 130 for an interrupt.
const isDaemon = process.argv[2] === "daemon"
NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) =>
    isDaemon && Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
      ? onExit(0)
      : Runtime.defaultTeardown(exit, onExit)
})
