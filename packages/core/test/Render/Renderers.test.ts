import { assert, describe, it } from "@effect/vitest"
import { findRenderer, renderers } from "../../src/Render/Renderers.ts"
import { input } from "./helpers.ts"

describe("Renderers", () => {
  it("registers each renderer under its own id", () => {
    assert.deepStrictEqual([...renderers.keys()], ["bitcoin-conf", "lnd-conf", "bitcoin-ui-nginx"])
    for (const [id, renderer] of renderers) {
      assert.strictEqual(renderer.id, id)
      assert.strictEqual(findRenderer(id), renderer)
      assert.deepStrictEqual(renderer.secrets, ["bitcoin-rpc-password"])
      assert.isTrue(renderer.render(input()).endsWith("\n"))
    }
  })

  it("finds nothing for an unknown id", () => {
    assert.isUndefined(findRenderer("no-such-renderer"))
  })
})
