/**
 * The update client: check the mirrors, apply a release, roll back by hand, report status.
 *
 * Apply, in this order (each step durable before the next; a kill -9 after any of them leaves a
 * node that boots into one consistent version):
 *   1. fetch and verify: the manifest's signature against the pinned key, the tarball's size and
 *      sha256 (Mirrors), in a temporary directory outside the install; nothing in the install
 *      changes before this passed. Killed here: nothing happened.
 *   2. unpack into releases/<version> (extractRelease: refuses a tarball that fails the release
 *      checks; temporary directory, then rename). Killed after: a spare tree; still the old version.
 *   3. write the pending marker {from, to, at, boots: 0}. Killed after: `current` is still `from`,
 *      so the next boot clears the marker and records the update as interrupted.
 *   4. switch `current` to the new release. Killed after: the next boot finds the marker and
 *      `current` = `to`, and verifies the new release (or rolls it back).
 *   5. restart the daemon through ServiceManager; the new daemon verifies at boot (Verifier).
 * The marker goes before the switch: the other way round, a kill between the two would boot a
 * release nobody verifies.
 */

import { extractRelease, verifyRelease } from "@archy/release"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Semaphore from "effect/Semaphore"
import { isUpdate, type PendingMarker } from "./Decide.ts"
import type { Install, UpdateResult } from "./Install.ts"
import { check, fetchRelease, type MirrorOptions, type NoMirrorWorked } from "./Mirrors.ts"
import { ServiceManager } from "./ServiceManager.ts"

/** An update request the node refuses or cannot carry out: what and why. */
export class UpdateError extends Data.TaggedError("UpdateError")<{ readonly message: string }> {}

/** What `update status` shows. */
export interface UpdateStatus {
  readonly installDir: string
  /** Where `current` points. */
  readonly current?: string
  /** The release this daemon started from (differs from `current` only between a switch and a restart). */
  readonly running?: string
  readonly previous?: string
  readonly pending?: PendingMarker
  readonly last?: UpdateResult
}

export interface CheckResult {
  readonly current?: string
  readonly latest: string
  readonly available: boolean
  readonly mirror: string
}

export interface ApplyResult {
  readonly from: string
  readonly to: string
  readonly mirror: string
}

/**
 * A test-only hook: `ARCHY_OTA_CRASH_AFTER=unpack|marker|switch` makes the process SIGKILL itself
 * right after that step of apply, as a power cut would. The crash-safety tests use it; nothing
 * else sets it.
 */
const crashAfter = (step: "unpack" | "marker" | "switch") =>
  Effect.sync(() => {
    if (process.env.ARCHY_OTA_CRASH_AFTER === step) process.kill(process.pid, "SIGKILL")
  })

const asUpdateError = (e: { readonly message: string }) => new UpdateError({ message: e.message })

export const make = (install: Install, mirrors: MirrorOptions, running?: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const services = yield* ServiceManager
    // One apply or rollback at a time: two would unpack into, or switch to, the same places.
    const lock = yield* Semaphore.make(1)
    const status = Effect.gen(function* () {
      const current = yield* install.current
      const state = yield* install.state
      const pending = yield* install.marker
      return {
        installDir: install.paths.root,
        ...(current !== undefined ? { current } : {}),
        ...(running !== undefined ? { running } : {}),
        ...(state.previous !== undefined ? { previous: state.previous } : {}),
        ...(pending !== undefined ? { pending } : {}),
        ...(state.last !== undefined ? { last: state.last } : {})
      } satisfies UpdateStatus
    }).pipe(Effect.mapError(asUpdateError))

    const checkNow = Effect.gen(function* () {
      const current = yield* install.current
      const found = yield* check(mirrors, (m) => isUpdate(m.version, current))
      const seen = found.attempts.find((a) => a.notNewer !== undefined)
      return {
        ...(current !== undefined ? { current } : {}),
        latest: found.offer?.manifest.version ?? seen?.notNewer ?? "none",
        available: found.offer !== undefined,
        mirror: found.offer?.mirror ?? seen?.mirror ?? "none"
      } satisfies CheckResult
    }).pipe(Effect.mapError(asUpdateError))

    const apply = Effect.gen(function* () {
      const from = yield* install.current
      if (from === undefined)
        return yield* new UpdateError({
          message: `${install.paths.current} does not exist: install a release before updating it`
        })
      const pending = yield* install.marker
      if (pending !== undefined)
        return yield* new UpdateError({
          message: `the update from ${pending.from} to ${pending.to} is still being verified; try again when it is done`
        })
      const got = yield* fetchRelease(mirrors, (m) => isUpdate(m.version, from)).pipe(
        Effect.catchTag("NoMirrorWorked", (e) =>
          e.attempts.length > 0 && e.attempts.every((a) => a.notNewer !== undefined)
            ? Effect.fail(
                new UpdateError({
                  message: `already up to date: ${from} runs, the mirrors offer ${[...new Set(e.attempts.map((a) => a.notNewer))].join(", ")}`
                })
              )
            : Effect.fail<NoMirrorWorked | UpdateError>(e)
        )
      )
      const to = got.manifest.version
      yield* Effect.gen(function* () {
        // The release library checks it all again on the files, and the tarball's contents.
        yield* verifyRelease({
          manifestFile: got.manifestFile,
          signatureFile: got.signatureFile,
          tarball: got.tarball,
          publicKey: mirrors.publicKeyFile
        })
        // A tree left by an earlier attempt (killed after unpacking) is not trusted: unpack afresh.
        if (yield* install.hasRelease(to)) yield* install.removeRelease(to)
        yield* fs.makeDirectory(install.paths.releases, { recursive: true })
        yield* extractRelease(got.tarball, install.releaseDir(to))
      }).pipe(Effect.ensuring(got.dispose))
      yield* crashAfter("unpack")
      yield* install.writeMarker({ from, to, at: DateTime.formatIso(yield* DateTime.now), boots: 0 })
      yield* crashAfter("marker")
      yield* install.switchTo(to)
      yield* crashAfter("switch")
      yield* Effect.logInfo(`update applied: ${from} -> ${to} (from ${got.mirror}); restarting to verify it`)
      yield* services.restart(`update ${from} -> ${to}`)
      return { from, to, mirror: got.mirror } satisfies ApplyResult
    }).pipe(Effect.mapError(asUpdateError), lock.withPermits(1))

    /** Back to the kept previous release, by hand (the verifier rolls back by itself). */
    const rollback = Effect.gen(function* () {
      const current = yield* install.current
      const state = yield* install.state
      const pending = yield* install.marker
      if (pending !== undefined)
        return yield* new UpdateError({
          message: `the update from ${pending.from} to ${pending.to} is still being verified; it rolls back by itself if it fails`
        })
      const previous = state.previous
      if (previous === undefined || previous === current)
        return yield* new UpdateError({ message: "there is no previous release to roll back to" })
      if (!(yield* install.hasRelease(previous)))
        return yield* new UpdateError({
          message: `the previous release ${previous} is no longer in ${install.paths.releases}`
        })
      yield* install.switchTo(previous)
      const result: UpdateResult = {
        outcome: "rolled-back",
        from: current ?? "none",
        to: previous,
        at: DateTime.formatIso(yield* DateTime.now),
        reason: "requested by the user"
      }
      yield* install.writeState({ ...(current !== undefined ? { previous: current } : {}), last: result })
      yield* services.restart(`rollback ${current} -> ${previous}`)
      return result
    }).pipe(Effect.mapError(asUpdateError), lock.withPermits(1))

    return { status, check: checkNow, apply, rollback }
  })

export type Updater = Effect.Success<ReturnType<typeof make>>
