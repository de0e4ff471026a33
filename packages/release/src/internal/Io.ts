/** File system steps as Effects that fail with IoFailed naming the step, the path and Node's reason. */
import * as Effect from "effect/Effect"
import { fail, IoFailed } from "../ReleaseError.ts"

export const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))

export const io = <A>(step: string, path: string, run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (e) => fail(new IoFailed({ step, path, reason: reasonOf(e) }))
  })

export const isMissing = (e: unknown): boolean =>
  typeof e === "object" && e !== null && (e as { code?: unknown }).code === "ENOENT"
