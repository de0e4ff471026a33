/**
 * First boot as part of Desired: the node's and the apps' directories, their owners through the
 * rootless id mapping, and what `plan` does about each one that is missing or drifted.
 */
import { readdirSync, readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { toJson } from "../src/Action.ts"
import { catalogFromSources } from "../src/Catalog.ts"
import * as Desired from "../src/Desired.ts"
import type { Observed, ObservedDirectory } from "../src/Observed.ts"
import { empty } from "../src/Observed.ts"
import type { IdMapping } from "../src/Ownership.ts"
import { plan } from "../src/Plan.ts"
import { applyPlan } from "./model.ts"

const torManifest = `
id: tor
name: Tor
version: 0.4.8
description: Onion routing for the node's services.
category: network
defaultInstalled: true
directories:
  - { path: data/hidden_service, mode: "0700", owner: tor }
  - { path: data/keys }
containers:
  - name: tor
    image: docker.io/example/tor:0.4.8
    user: "100:101"
    mounts:
      - { source: data, target: /var/lib/tor }
      - { source: config/torrc.d, target: /etc/tor/torrc.d, readOnly: true }
`
const catalog = catalogFromSources([
  { file: "tor/manifest.yml", dir: "tor", dirName: "tor", text: torManifest }
])
const node = (ids?: IdMapping): Desired.NodeConfig => ({
  ...Desired.defaultNodeConfig,
  dataRoot: "/srv/node/apps",
  secretsDir: "/srv/node/secrets",
  ...(ids !== undefined ? { ids } : {})
})
const desiredWith = (ids?: IdMapping) =>
  Desired.make({ catalog, node: node(ids), selection: Desired.defaultSelection(catalog), secrets: new Map() })
const allDirs = (d: Desired.Desired) => [...d.directories, ...d.apps.flatMap((a) => a.directories)]
const table = (d: Desired.Desired) =>
  allDirs(d).map((x) => `${x.shown} ${x.mode.toString(8)} ${x.uid}:${x.gid} ${x.app ?? "node"}: ${x.purpose}`)

const archy = { name: "archy", uid: 1001, gid: 1001 }
const rootless: IdMapping = {
  _tag: "Rootless",
  user: archy,
  subuid: { start: 100_000, count: 65_536 },
  subgid: { start: 100_000, count: 65_536 }
}

/** Observed stats of every desired directory, as if they all matched. */
const matching = (d: Desired.Desired): ReadonlyArray<ObservedDirectory> =>
  allDirs(d).map((x) => ({ path: x.path, kind: "directory", mode: 0o40000 | x.mode, uid: x.uid, gid: x.gid }))

const dirActions = (d: Desired.Desired, observed: Observed) =>
  plan(d, observed, { now: 0 })
    .filter((a) => a.target.startsWith("dir:"))
    .map((a) => toJson(a))

describe("Desired directories", () => {
  it("the catalog loads", () => assert.deepStrictEqual(catalog.issues, []))

  it("rootful: the node's dirs, the app root, mounted and declared dirs with their owners, parents first", () => {
    assert.deepStrictEqual(table(desiredWith()), [
      "/srv/node 755 0:0 node: the node's state dir",
      "apps 755 0:0 node: the apps' data roots",
      "secrets 700 0:0 node: the node's canonical secrets",
      "apps/tor 755 0:0 tor: the data root of app tor",
      "apps/tor/config 755 0:0 tor: parent of the app's data",
      "apps/tor/config/torrc.d 755 0:0 tor: read by container tor",
      "apps/tor/data 755 100:101 tor: data of container tor",
      "apps/tor/data/hidden_service 700 100:101 tor: declared by app tor for container tor",
      // No owner declared: it takes its parent's, the uid tor runs as.
      "apps/tor/data/keys 755 100:101 tor: declared by app tor"
    ])
  })

  it("rootless: container root is the service user, tor's uid 100 is subuid_start + 99", () => {
    assert.deepStrictEqual(table(desiredWith(rootless)), [
      "/srv/node 755 1001:1001 node: the node's state dir",
      "apps 755 1001:1001 node: the apps' data roots",
      "secrets 700 1001:1001 node: the node's canonical secrets",
      "apps/tor 755 1001:1001 tor: the data root of app tor",
      "apps/tor/config 755 1001:1001 tor: parent of the app's data",
      "apps/tor/config/torrc.d 755 1001:1001 tor: read by container tor",
      "apps/tor/data 755 100099:100100 tor: data of container tor",
      "apps/tor/data/hidden_service 700 100099:100100 tor: declared by app tor for container tor",
      "apps/tor/data/keys 755 100099:100100 tor: declared by app tor"
    ])
  })

  it("a rendered file's owner is mapped as the directories are", () => {
    const withFile = catalogFromSources([
      {
        file: "tor/manifest.yml",
        dir: "tor",
        dirName: "tor",
        text: `${torManifest}files:\n  - { path: data/torrc, template: torrc, owner: "100:101", consumers: [tor] }\n`,
        templates: new Map([["torrc", "SocksPort 9050\n"]])
      }
    ])
    assert.deepStrictEqual(withFile.issues, [])
    const fileOf = (ids?: IdMapping) =>
      Desired.make({
        catalog: withFile,
        node: node(ids),
        selection: Desired.defaultSelection(withFile),
        secrets: new Map()
      }).apps[0]!.files[0]!
    assert.strictEqual(fileOf().owner, "100:101")
    assert.strictEqual(fileOf(rootless).owner, "100099:100100")
    const small: IdMapping = { ...rootless, subuid: { start: 100_000, count: 50 } }
    assert.strictEqual(fileOf(small).owner, undefined)
    assert.match(
      fileOf(small).renderError ?? "",
      /^cannot own data\/torrc: container uid 100 is beyond user archy's/
    )
  })

  it("blocks an app whose uid is beyond the service user's range, naming user and range, and plans nothing for it", () => {
    const small: IdMapping = { ...rootless, subuid: { start: 100_000, count: 50 } }
    const d = desiredWith(small)
    const tor = d.apps.find((a) => a.id === "tor")!
    assert.strictEqual(
      tor.blocked,
      "cannot own apps/tor/data: container uid 100 is beyond user archy's /etc/subuid range 100000-100049 (50 ids, container uids 1-49)"
    )
    assert.deepStrictEqual(tor.directories, [])
    const actions = plan(d, empty, { now: 0 }).map((a) => toJson(a))
    assert.deepStrictEqual(
      actions.filter((a) => a.target === "container:tor"),
      [{ kind: "wait", target: "container:tor", cause: `app tor ${tor.blocked}` }]
    )
    assert.isFalse(actions.some((a) => a.target.startsWith("dir:/srv/node/apps/tor")))
  })
})

describe("plan: directories", () => {
  const d = desiredWith()
  const have = matching(d)
  const hs = "/srv/node/apps/tor/data/hidden_service"
  const with_ = (path: string, change: Partial<ObservedDirectory> | undefined): Observed => ({
    ...empty,
    directories: have.flatMap((x) =>
      x.path !== path ? [x] : change === undefined ? [] : [{ ...x, ...change }]
    )
  })

  it("a fresh node: every directory is created, the node's before anything else, an app's before its containers", () => {
    const all = plan(d, empty, { now: 0 }).map((a) => toJson(a))
    assert.deepStrictEqual(all.slice(0, 3), [
      {
        kind: "ensure-directory",
        target: "dir:/srv/node",
        cause: "/srv/node does not exist (the node's state dir; want 0755, owner 0:0)"
      },
      {
        kind: "ensure-directory",
        target: "dir:/srv/node/apps",
        cause: "apps does not exist (the apps' data roots; want 0755, owner 0:0)"
      },
      {
        kind: "ensure-directory",
        target: "dir:/srv/node/secrets",
        cause: "secrets does not exist (the node's canonical secrets; want 0700, owner 0:0)"
      }
    ])
    const at = (target: string) => all.findIndex((a) => a.target === target)
    assert.isTrue(at(`dir:${hs}`) > at("dir:/srv/node/apps/tor/data"))
    assert.isTrue(at(`dir:${hs}`) < at("container:tor"))
    assert.strictEqual(
      all[at(`dir:${hs}`)]!.cause,
      "apps/tor/data/hidden_service does not exist (declared by app tor for container tor; want 0700, owner 100:101)"
    )
  })

  it("a snapshot that did not look at directories (no key) plans none", () => {
    const { directories: _none, ...blind } = empty
    assert.deepStrictEqual(dirActions(d, blind), [])
  })

  it("plans nothing when every directory matches", () => {
    assert.deepStrictEqual(dirActions(d, { ...empty, directories: have }), [])
  })

  it("repairs a wrong mode or owner with the cause, never anything else", () => {
    assert.deepStrictEqual(dirActions(d, with_(hs, { mode: 0o40755 })), [
      {
        kind: "ensure-directory",
        target: `dir:${hs}`,
        cause: "apps/tor/data/hidden_service is 0755, want 0700"
      }
    ])
    assert.deepStrictEqual(dirActions(d, with_(hs, { uid: 0, gid: 0 })), [
      {
        kind: "ensure-directory",
        target: `dir:${hs}`,
        cause: "apps/tor/data/hidden_service is owned by 0:0, want owned by 100:101"
      }
    ])
    assert.deepStrictEqual(dirActions(d, with_(hs, { mode: 0o40777, uid: 5, gid: 5 })), [
      {
        kind: "ensure-directory",
        target: `dir:${hs}`,
        cause: "apps/tor/data/hidden_service is 0777 owned by 5:5, want 0700 owned by 100:101"
      }
    ])
    const fix = plan(d, with_(hs, { mode: 0o40755 }), { now: 0 }).find((a) => a.target === `dir:${hs}`)!
    assert.strictEqual(fix._tag, "EnsureDirectory")
    assert.isTrue(fix._tag === "EnsureDirectory" && fix.exists)
  })

  it("never follows or replaces a symbolic link or a file where a directory belongs", () => {
    assert.deepStrictEqual(dirActions(d, with_(hs, { kind: "symlink" })), [
      {
        kind: "wait",
        target: `dir:${hs}`,
        cause:
          "apps/tor/data/hidden_service is a symbolic link; it is never followed or replaced: move it away (declared by app tor for container tor)"
      }
    ])
    assert.strictEqual(dirActions(d, with_(hs, { kind: "other" }))[0]?.kind, "wait")
  })

  it("never removes a directory: one no longer desired plans nothing", () => {
    const extra: ObservedDirectory = {
      path: "/srv/node/apps/gone",
      kind: "directory",
      mode: 0o40700,
      uid: 7,
      gid: 7
    }
    const none = Desired.make({
      catalog,
      node: node(),
      selection: { installed: [], stopped: [] },
      secrets: new Map()
    })
    assert.deepStrictEqual(
      dirActions(none, { ...empty, directories: [...matching(none), ...have, extra] }),
      []
    )
  })

  it("property: whatever is on disk, one pass repairs it and a second pass plans no directory action", () => {
    const dirs = allDirs(d)
    const state = fc.option(
      fc.record({
        kind: fc.constantFrom("directory" as const),
        mode: fc.integer({ min: 0, max: 0o7777 }).map((m) => 0o40000 | m),
        uid: fc.constantFrom(0, 5, 100, 1000),
        gid: fc.constantFrom(0, 5, 101, 1000)
      }),
      { nil: undefined }
    )
    fc.assert(
      fc.property(fc.array(state, { minLength: dirs.length, maxLength: dirs.length }), (states) => {
        const observed: Observed = {
          ...empty,
          directories: dirs.flatMap((x, i) =>
            states[i] === undefined ? [] : [{ path: x.path, ...states[i]! }]
          )
        }
        const first = plan(d, observed, { now: 0 })
        const after = applyPlan({ observed, secrets: new Map() }, first, 0)
        assert.deepStrictEqual(dirActions(d, after.observed), [])
        // Each directory appears at most once, and only when it differed.
        const targets = first.filter((a) => a._tag === "EnsureDirectory").map((a) => a.target)
        assert.strictEqual(new Set(targets).size, targets.length)
      }),
      { numRuns: 200 }
    )
  })
})

describe("the catalog's first-boot directories", () => {
  const repoApps = new URL("../../../apps/", import.meta.url).pathname
  const real = catalogFromSources(
    ["tor", "wireguard", "nostr-relay"].map((dirName) => ({
      file: `apps/${dirName}/manifest.yml`,
      dir: `${repoApps}${dirName}`,
      dirName,
      text: readFileSync(`${repoApps}${dirName}/manifest.yml`, "utf8"),
      templates: new Map(
        readdirSync(`${repoApps}${dirName}`)
          .filter((f) => f !== "manifest.yml")
          .map((f) => [f, readFileSync(`${repoApps}${dirName}/${f}`, "utf8")])
      )
    }))
  )
  const of = (ids?: IdMapping) =>
    table(
      Desired.make({
        catalog: real,
        node: node(ids),
        selection: { installed: ["tor", "wireguard", "nostr-relay"], stopped: [] },
        secrets: new Map()
      })
    ).filter((row) => /^apps\/(tor|wireguard|nostr-relay)\/(data|db)/.test(row))

  it("Tor's data and hidden-service dirs are 0700 and its uid's; WireGuard's keys 0700; the relay's db its own", () => {
    assert.deepStrictEqual(real.issues, [])
    assert.deepStrictEqual(
      of().map((row) => row.split(" ").slice(0, 3).join(" ")),
      [
        "apps/nostr-relay/db 700 1000:1000",
        "apps/tor/data 700 1000:1000",
        "apps/tor/data/hidden_service 700 1000:1000",
        "apps/wireguard/data 700 0:0"
      ]
    )
    // Rootless: uid 1000 is subuid_start + 999; WireGuard's root is the service user.
    assert.deepStrictEqual(
      of(rootless).map((row) => row.split(" ").slice(0, 3).join(" ")),
      [
        "apps/nostr-relay/db 700 100999:100999",
        "apps/tor/data 700 100999:100999",
        "apps/tor/data/hidden_service 700 100999:100999",
        "apps/wireguard/data 700 1001:1001"
      ]
    )
  })
})
