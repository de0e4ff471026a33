import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { DesiredDirectory } from "@archy/core/Desired"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { ensureDirectory, observeDirectories } from "../src/Directories.ts"
import { readIdMapping } from "../src/HostIds.ts"

// Giving a directory to another uid needs root; CI runs as root, so there it never skips.
const notRoot = process.getuid?.() !== 0 && process.env.CI !== "true"

const withTemp = <A, E>(f: (dir: string) => Effect.Effect<A, E>) =>
  Effect.suspend(() => {
    const dir = mkdtempSync(join(tmpdir(), "archy-dirs-"))
    return f(dir).pipe(Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true }))))
  })

const dirIn = (root: string, rel: string, mode: number, uid = 0, gid = 0): DesiredDirectory => ({
  app: "demo",
  path: join(root, rel),
  shown: rel,
  root,
  mode,
  uid,
  gid,
  purpose: "test"
})

const statOf = (p: string) => {
  const s = statSync(p)
  return { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid }
}

describe.skipIf(notRoot)("ensureDirectory", () => {
  it.effect("creates a directory with its exact mode and owner, whatever the umask", () =>
    withTemp((root) =>
      Effect.gen(function* () {
        const prev = process.umask(0o077)
        yield* ensureDirectory(dirIn(root, "data", 0o755, 100, 101), false).pipe(
          Effect.ensuring(Effect.sync(() => process.umask(prev)))
        )
        yield* ensureDirectory(dirIn(root, "data/hidden_service", 0o700, 100, 101), false)
        assert.deepStrictEqual(statOf(join(root, "data")), { mode: 0o755, uid: 100, gid: 101 })
        assert.deepStrictEqual(statOf(join(root, "data/hidden_service")), { mode: 0o700, uid: 100, gid: 101 })
      })
    )
  )

  it.effect("repairs mode and owner of the directory only, never of its contents", () =>
    withTemp((root) =>
      Effect.gen(function* () {
        const data = join(root, "data")
        mkdirSync(join(data, "blocks"), { recursive: true, mode: 0o777 })
        writeFileSync(join(data, "blocks", "blk0.dat"), "block")
        writeFileSync(join(data, "wallet.dat"), "wallet", { mode: 0o600 })
        const before = readdirSync(data).map((n) => [n, statOf(join(data, n))])
        yield* ensureDirectory(dirIn(root, "data", 0o750, 1000, 1000), true)
        assert.deepStrictEqual(statOf(data), { mode: 0o750, uid: 1000, gid: 1000 })
        assert.deepStrictEqual(
          readdirSync(data).map((n) => [n, statOf(join(data, n))]),
          before,
          "nothing inside changed"
        )
        // Again: nothing to change, and creating an existing directory is no error.
        yield* ensureDirectory(dirIn(root, "data", 0o750, 1000, 1000), false)
        assert.deepStrictEqual(statOf(data), { mode: 0o750, uid: 1000, gid: 1000 })
      })
    )
  )

  it.effect(
    "refuses a symbolic link at the directory or on the way to it, and touches nothing behind it",
    () =>
      withTemp((root) =>
        Effect.gen(function* () {
          const outside = join(root, "outside")
          mkdirSync(outside, { mode: 0o755 })
          mkdirSync(join(root, "apps/demo/data"), { recursive: true })
          // A container owning data/ points data/hs at a directory it must not get.
          symlinkSync(outside, join(root, "apps/demo/data/hs"))
          symlinkSync(outside, join(root, "apps/demo/data/via"))
          const apps = join(root, "apps")
          const dir = (rel: string): DesiredDirectory => ({
            ...dirIn(apps, rel, 0o700, 100, 101),
            root: apps
          })
          const atLink = yield* Effect.flip(ensureDirectory(dir("demo/data/hs"), true))
          assert.include(atLink.message, "is a symbolic link or not a directory; refusing to follow it")
          const atParent = yield* Effect.flip(ensureDirectory(dir("demo/data/via/inner"), false))
          assert.strictEqual(atParent.step, "open")
          // Deeper, every last component is a real directory: the resolved path gives the link away.
          mkdirSync(join(outside, "inner"), { mode: 0o755 })
          const below = yield* Effect.flip(ensureDirectory(dir("demo/data/via/inner/deeper"), false))
          assert.include(below.message, "a symbolic link on the way")
          const belowExisting = yield* Effect.flip(ensureDirectory(dir("demo/data/via/inner"), true))
          assert.include(belowExisting.message, `resolves to ${join(outside, "inner")}`)
          assert.deepStrictEqual(statOf(outside), { mode: 0o755, uid: 0, gid: 0 })
          assert.deepStrictEqual(statOf(join(outside, "inner")), { mode: 0o755, uid: 0, gid: 0 })
          assert.deepStrictEqual(readdirSync(outside), ["inner"], "nothing was created behind the link")
          assert.deepStrictEqual(readdirSync(join(outside, "inner")), [])
          assert.isTrue(lstatSync(join(root, "apps/demo/data/hs")).isSymbolicLink(), "the link is left alone")
        })
      )
  )

  it.effect("follows a link at a node directory that is its own root (a state dir on another disk)", () =>
    withTemp((root) =>
      Effect.gen(function* () {
        mkdirSync(join(root, "disk"))
        symlinkSync(join(root, "disk"), join(root, "state"))
        const state = { ...dirIn(root, "state", 0o755), root: join(root, "state") }
        yield* ensureDirectory(state, true)
        assert.deepStrictEqual(statOf(join(root, "disk")), { mode: 0o755, uid: 0, gid: 0 })
        const observed = yield* observeDirectories([state, dirIn(root, "missing", 0o755)])
        assert.deepStrictEqual(
          observed.map((o) => [o.path, o.kind]),
          [[join(root, "state"), "directory"]]
        )
      })
    )
  )
})

describe("observeDirectories", () => {
  it.effect("reports links as links and leaves missing directories out", () =>
    withTemp((root) =>
      Effect.gen(function* () {
        mkdirSync(join(root, "d"), { mode: 0o700 })
        symlinkSync(join(root, "d"), join(root, "l"))
        writeFileSync(join(root, "f"), "")
        const observed = yield* observeDirectories(
          ["d", "l", "f", "none"].map((rel) => dirIn(root, rel, 0o700))
        )
        assert.deepStrictEqual(
          observed.map((o) => [o.path.slice(root.length + 1), o.kind, o.mode & 0o7777]),
          [
            ["d", "directory", 0o700],
            ["l", "symlink", 0o777],
            ["f", "other", statSync(join(root, "f")).mode & 0o7777]
          ]
        )
      })
    )
  )
})

describe("readIdMapping", () => {
  it("is rootful for a podman running as root, rootless through the user's ranges otherwise", () => {
    const dir = mkdtempSync(join(tmpdir(), "archy-ids-"))
    try {
      const files = {
        passwd: join(dir, "passwd"),
        subuid: join(dir, "subuid"),
        subgid: join(dir, "subgid")
      }
      writeFileSync(
        files.passwd,
        "root:x:0:0::/root:/bin/sh\narchy:x:1001:1002::/home/archy:/usr/sbin/nologin\n"
      )
      writeFileSync(files.subuid, "other:100000:65536\narchy:165536:65536\n")
      writeFileSync(files.subgid, "1001:300000:1000\n")
      assert.deepStrictEqual(readIdMapping(0, files), { _tag: "Rootful" })
      assert.deepStrictEqual(readIdMapping(1001, files), {
        _tag: "Rootless",
        user: { name: "archy", uid: 1001, gid: 1002 },
        subuid: { start: 165_536, count: 65_536 },
        subgid: { start: 300_000, count: 1000 }
      })
      // Unknown to passwd and the ranges: named by uid, with no ranges (mapping says so later).
      assert.deepStrictEqual(readIdMapping(4242, files), {
        _tag: "Rootless",
        user: { name: "4242", uid: 4242, gid: 4242 }
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
