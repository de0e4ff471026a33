/**
 * Restarting the daemon itself, after an update switched `current` or a rollback switched it back.
 *
 * On a node (and in the tests) the daemon ends itself gracefully (SIGTERM to its own process: the
 * action under way finishes, the API closes, exit 0) and its supervisor starts
 * `current/bin/archy daemon` again: systemd with `Restart=always` (image-recipe/archipelago.service),
 * a supervisor process in the tests. Chosen over `systemctl restart archipelago.service` from
 * inside the unit: that needs systemd and D-Bus reachable from the daemon, and systemd kills the
 * calling `systemctl` with the rest of the unit's cgroup while the job runs; exiting relies only on
 * the restart policy that already brings the daemon back after a crash or a kill -9.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export class ServiceManager extends Context.Service<
  ServiceManager,
  {
    /** Arranges for the daemon to start again from `current`; `reason` goes to the log. */
    readonly restart: (reason: string) => Effect.Effect<void>
  }
>()("archy/ota/ServiceManager") {
  /** In the daemon: end this process gracefully; systemd (or the test supervisor) starts it again. */
  static readonly layerExit = Layer.succeed(ServiceManager, {
    restart: (reason) =>
      Effect.logInfo(`restarting the daemon: ${reason}`).pipe(
        // Give the API a moment to send the answer of the call that asked for it.
        Effect.andThen(Effect.sleep("300 millis")),
        Effect.andThen(Effect.sync(() => process.kill(process.pid, "SIGTERM"))),
        Effect.forkDetach,
        Effect.asVoid
      )
  })

  /** Outside the daemon (the CLI with no daemon running): nothing to restart; its next start verifies. */
  static readonly layerNone = Layer.succeed(ServiceManager, {
    restart: (reason) =>
      Effect.logInfo(`${reason}: no daemon is running; its next start boots the new current and verifies it`)
  })
}
