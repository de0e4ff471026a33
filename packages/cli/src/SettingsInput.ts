/**
 * The operator's setting choices for commands that act on the node directly (`--direct` or no
 * daemon): read from `<state-dir>/settings.json`, so a direct pass renders what the daemon would.
 * A corrupt file is reported (naming it) and ends the command.
 */
import type { SettingsChoices } from "@archy/core/Settings"
import { SettingsStore } from "@archy/engine/SettingsStore"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { type NodeOptions, stateDirOf } from "./NodeOptions.ts"
import { Reported } from "./Reported.ts"

export const settingsLayerOf = (options: NodeOptions) =>
  SettingsStore.layer(`${stateDirOf(options)}/settings.json`)

export const readSettings = (options: NodeOptions) =>
  Effect.gen(function* () {
    const store = yield* SettingsStore
    return yield* store.get
  }).pipe(
    Effect.provide(settingsLayerOf(options)),
    Effect.catchTag("SettingsError", (e) =>
      Effect.andThen(Console.error(`archy: ${e.message}`), Effect.fail(new Reported()))
    )
  ) as Effect.Effect<SettingsChoices, Reported, never>
