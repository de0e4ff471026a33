import { assert, describe, it } from "@effect/vitest"
import { classify } from "../src/LibpodApi.ts"

describe("LibpodApi.classify", () => {
  const start = {
    operation: "start container c",
    method: "POST" as const,
    path: "/containers/c/start",
    container: "c"
  }

  it("a name conflict is NameInUse", () => {
    const e = classify(start, {
      status: 500,
      body: '{"cause":"that name is already in use","message":"creating container storage: the container name \\"c\\" is already in use by 42e7a8ec: that name is already in use","response":500}'
    })
    assert.deepInclude(e.reason, { _tag: "NameInUse", container: "c" })
  })

  it("a host port another process holds is not a name conflict: podman's words are kept", () => {
    const e = classify(start, {
      status: 500,
      body: '{"cause":"address already in use","message":"cannot listen on the TCP port: listen tcp4 127.0.0.1:18999: bind: address already in use","response":500}'
    })
    assert.strictEqual(e.reason._tag, "UnexpectedOutput")
    assert.include(e.message, "listen tcp4 127.0.0.1:18999: bind: address already in use")
  })
})
