/**
 * One lock per app id, shared by the reconciler and the API: an install and a pass never act
 * on the same app at once, while different apps proceed in parallel. Several locks are always
 * taken in id order, so two holders can never wait on each other.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Semaphore from "effect/Semaphore"

export class AppLocks extends Context.Service<
  AppLocks,
  {
    readonly withApps: <A, E, R>(
      ids: ReadonlyArray<string>,
      effect: Effect.Effect<A, E, R>
    ) => Effect.Effect<A, E, R>
  }
>()("archy/engine/AppLocks") {
  static readonly layer = Layer.effect(
    AppLocks,
    Effect.sync(() => {
      const locks = new Map<string, Semaphore.Semaphore>()
      const lockOf = (id: string) => {
        let lock = locks.get(id)
        if (lock === undefined) {
          lock = Semaphore.makeUnsafe(1)
          locks.set(id, lock)
        }
        return lock
      }
      const withApps = <A, E, R>(ids: ReadonlyArray<string>, effect: Effect.Effect<A, E, R>) =>
        [...new Set(ids)]
          .sort()
          .reduceRight<Effect.Effect<A, E, R>>((inner, id) => Semaphore.withPermit(lockOf(id), inner), effect)
      return AppLocks.of({ withApps })
    })
  )
}
