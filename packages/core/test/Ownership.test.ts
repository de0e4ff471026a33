import { assert, describe, it } from "@effect/vitest"
import { type IdMapping, parseUser, rootful, subIdRange, toHost } from "../src/Ownership.ts"

const archy = { name: "archy", uid: 1001, gid: 1002 }
const rootless: IdMapping = {
  _tag: "Rootless",
  user: archy,
  subuid: { start: 100_000, count: 65_536 },
  subgid: { start: 200_000, count: 65_536 }
}

describe("toHost", () => {
  it("rootful podman: container uid N is host uid N", () => {
    assert.deepStrictEqual(toHost(rootful, { uid: 0, gid: 0 }), { owner: { uid: 0, gid: 0 } })
    assert.deepStrictEqual(toHost(rootful, { uid: 1000, gid: 1001 }), { owner: { uid: 1000, gid: 1001 } })
  })

  it("rootless podman: container root is the service user, N >= 1 is subid_start + N - 1", () => {
    assert.deepStrictEqual(toHost(rootless, { uid: 0, gid: 0 }), { owner: { uid: 1001, gid: 1002 } })
    assert.deepStrictEqual(toHost(rootless, { uid: 1, gid: 1 }), { owner: { uid: 100_000, gid: 200_000 } })
    assert.deepStrictEqual(toHost(rootless, { uid: 1000, gid: 100 }), {
      owner: { uid: 100_999, gid: 200_099 }
    })
    // The last id of the range: container uid count - 1.
    assert.deepStrictEqual(toHost(rootless, { uid: 65_535, gid: 0 }), { owner: { uid: 165_534, gid: 1002 } })
  })

  it("a container id beyond the range is an error naming the user and the range", () => {
    assert.deepStrictEqual(toHost(rootless, { uid: 65_536, gid: 0 }), {
      error:
        "container uid 65536 is beyond user archy's /etc/subuid range 100000-165535 (65536 ids, container uids 1-65535)"
    })
    assert.deepStrictEqual(toHost(rootless, { uid: 0, gid: 70_000 }), {
      error:
        "container gid 70000 is beyond user archy's /etc/subgid range 200000-265535 (65536 ids, container gids 1-65535)"
    })
  })

  it("a user without a range maps only root", () => {
    const bare: IdMapping = { _tag: "Rootless", user: archy }
    assert.deepStrictEqual(toHost(bare, { uid: 0, gid: 0 }), { owner: { uid: 1001, gid: 1002 } })
    assert.deepStrictEqual(toHost(bare, { uid: 1000, gid: 1000 }), {
      error: "container uid 1000 cannot be mapped: user archy has no range in /etc/subuid"
    })
  })
})

describe("subIdRange", () => {
  const text = "# comment\nalice:100000:65536\nbroken line\n1001:300000:1000\narchy:400000:65536\n"

  it("finds the user's first range, by name or by uid", () => {
    assert.deepStrictEqual(subIdRange(text, { name: "alice", uid: 1000 }), { start: 100_000, count: 65_536 })
    assert.deepStrictEqual(subIdRange(text, { name: "archy", uid: 1001 }), { start: 300_000, count: 1000 })
    assert.strictEqual(subIdRange(text, { name: "bob", uid: 1003 }), undefined)
    assert.strictEqual(subIdRange("", { name: "bob", uid: 1003 }), undefined)
  })
})

describe("parseUser", () => {
  it("reads uid or uid:gid; no user is root; a name is unknown", () => {
    assert.deepStrictEqual(parseUser(undefined), { uid: 0, gid: 0 })
    assert.deepStrictEqual(parseUser("1000"), { uid: 1000, gid: 1000 })
    assert.deepStrictEqual(parseUser("100:101"), { uid: 100, gid: 101 })
    assert.strictEqual(parseUser("bitcoin"), undefined)
    assert.strictEqual(parseUser("1000:bitcoin"), undefined)
  })
})
