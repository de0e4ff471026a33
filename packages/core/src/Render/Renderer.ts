/**
 * The contract every config renderer follows. A renderer is a pure function from canonical
 * secrets and the manifest's parameters to the exact bytes of one file; it never reads the
 * clock, the disk or randomness, so the same inputs always give the same bytes (drift is then
 * a plain byte comparison).
 */
import * as Data from "effect/Data"
import type * as Redacted from "effect/Redacted"

/** What a renderer receives: exactly the secrets it declares, and the manifest's params. */
export interface RenderInput {
  readonly secrets: ReadonlyMap<string, Redacted.Redacted<string>>
  readonly params: Readonly<Record<string, string | number | boolean>>
}

/** A named, pure renderer. `secrets` lists the canonical secrets it needs. */
export interface Renderer {
  readonly id: string
  readonly description: string
  readonly secrets: ReadonlyArray<string>
  readonly render: (input: RenderInput) => string
  /**
   * What to write instead when `render` cannot produce the file (a bad param, a secret gone):
   * a config that holds no credentials and refuses service, so a consumer never runs on stale
   * or missing credentials. Without one, the file's consumers are stopped instead.
   */
  readonly failSafe?: () => string
}

/** Raised by a renderer when its input cannot produce a file (missing secret, bad param). */
export class RenderError extends Data.TaggedError("RenderError")<{
  readonly renderer: string
  readonly reason: string
}> {
  override get message(): string {
    return `renderer ${this.renderer}: ${this.reason}`
  }
}
