import { assert, describe, it } from "@effect/vitest"
import { discoverSocket, rootfulSocket, rootlessSocket } from "../src/Socket.ts"

const existing =
  (...paths: ReadonlyArray<string>) =>
  (path: string) =>
    paths.includes(path)

describe("discoverSocket", () => {
  it("an explicit path wins, even when it does not exist", () => {
    assert.strictEqual(
      discoverSocket({ explicit: "/tmp/x.sock", uid: 0, exists: existing(rootfulSocket) }),
      "/tmp/x.sock"
    )
    assert.strictEqual(
      discoverSocket({ explicit: "/tmp/x.sock", uid: 1000, exists: existing() }),
      "/tmp/x.sock"
    )
  })

  it("an explicit unix:// URL is its path", () => {
    assert.strictEqual(
      discoverSocket({ explicit: "unix:///run/a.sock", uid: 0, exists: existing() }),
      "/run/a.sock"
    )
  })

  it("an empty explicit value counts as not given", () => {
    assert.strictEqual(
      discoverSocket({ explicit: "", uid: 0, exists: existing(rootfulSocket) }),
      rootfulSocket
    )
  })

  it("root uses the rootful socket when it exists", () => {
    assert.strictEqual(discoverSocket({ uid: 0, exists: existing(rootfulSocket) }), "/run/podman/podman.sock")
  })

  it("another user uses their own rootless socket, not the rootful one", () => {
    assert.strictEqual(rootlessSocket(1000), "/run/user/1000/podman/podman.sock")
    assert.strictEqual(
      discoverSocket({ uid: 1000, exists: existing(rootlessSocket(1000), rootfulSocket) }),
      "/run/user/1000/podman/podman.sock"
    )
    assert.isUndefined(discoverSocket({ uid: 1000, exists: existing(rootfulSocket, rootlessSocket(1001)) }))
  })

  it("no socket: undefined, so the caller uses the CLI", () => {
    assert.isUndefined(discoverSocket({ uid: 0, exists: existing() }))
    assert.isUndefined(discoverSocket({ uid: 1000, exists: existing() }))
  })

  it("looks only at the one candidate path", () => {
    const asked: Array<string> = []
    discoverSocket({
      uid: 0,
      exists: (p) => {
        asked.push(p)
        return false
      }
    })
    assert.deepStrictEqual(asked, [rootfulSocket])
  })
})
