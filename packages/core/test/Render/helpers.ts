/**
 * Small shared fixtures for the renderer tests.
 */
import { assert } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import { RenderError, type RenderInput } from "../../src/Render/Renderer.ts"

export const PASSWORD = "correct horse battery staple"

/** A render input; `password: null` leaves the secret out. */
export const input = (
  params: RenderInput["params"] = {},
  password: string | null = PASSWORD
): RenderInput => ({
  secrets: new Map(password === null ? [] : [["bitcoin-rpc-password", Redacted.make(password)]]),
  params
})

/** Runs `f`, which must throw a RenderError, and returns it. */
export const renderError = (f: () => unknown): RenderError => {
  try {
    f()
  } catch (error) {
    assert.instanceOf(error, RenderError)
    return error
  }
  return assert.fail("expected a RenderError")
}
