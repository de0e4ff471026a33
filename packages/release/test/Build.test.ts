import { chmodSync, existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { buildRelease, generateKeyPair, ReleaseError } from "../src/index.ts"
import { cleanup, listDir, mkfifo, readEntries, releaseTree, tempDir, writeTree } from "./support.ts"

afterAll(cleanup)

const keyPair = Effect.gen(function* () {
  const out = join(tempDir(), "release.key")
  return yield* generateKeyPair({ out })
})

/** Builds and returns the failure, asserting it failed and OUTDIR stayed empty or absent. */
const refused = (from: string, version = "1.0.0") =>
  Effect.gen(function* () {
    const key = yield* keyPair
    const outDir = join(tempDir(), "out")
    const result = yield* Effect.result(buildRelease({ from, version, keyFile: key.privateKeyFile, outDir }))
    assert.strictEqual(result._tag, "Failure")
    assert.isFalse(existsSync(outDir) && listDir(outDir).length > 0, "nothing may reach OUTDIR")
    const error = (result as { failure: ReleaseError }).failure
    assert.instanceOf(error, ReleaseError)
    return error
  })

const violationsOf = (e: ReleaseError) =>
  e.reason._tag === "TreeRejected" || e.reason._tag === "TarballRejected" ? e.reason.violations : []

describe("buildRelease", () => {
  it.effect("refuses a tree whose root is 0700 and says so (FM5)", () =>
    Effect.gen(function* () {
      const tree = releaseTree("1.0.0")
      chmodSync(tree, 0o700)
      const error = yield* refused(tree)
      assert.strictEqual(error.reason._tag, "TreeRejected")
      assert.deepStrictEqual(
        violationsOf(error).map((v) => [v.path, v.check]),
        [["./", "root-mode"]]
      )
      assert.match(error.message, /root is drwx------ \(0700\)/)
      // --from is never modified
      assert.strictEqual(statSync(tree).mode & 0o7777, 0o700)
    })
  )

  it.effect("refuses an absolute symlink, a link leaving the tree, a chain escaping, and a fifo", () =>
    Effect.gen(function* () {
      const tree = releaseTree("1.0.0")
      symlinkSync("/etc/passwd", join(tree, "web/passwd"))
      symlinkSync("../../outside", join(tree, "web/up"))
      symlinkSync("..", join(tree, "apps/parent"))
      symlinkSync("apps/parent/..", join(tree, "sneaky"))
      mkfifo(join(tree, "web/pipe"))
      const error = yield* refused(tree)
      assert.strictEqual(error.reason._tag, "TreeRejected")
      assert.deepStrictEqual(
        violationsOf(error)
          .map((v) => `${v.path} ${v.check}`)
          .sort(),
        ["./sneaky link-escape", "./web/passwd link-escape", "./web/pipe entry-type", "./web/up link-escape"]
      )
      assert.match(error.message, /\.\/web\/passwd: symlink absolute target \/etc\/passwd/)
      assert.match(error.message, /\.\/web\/pipe: fifo/)
    })
  )

  it.effect("refuses a tree without the launcher, a non-executable launcher, a VERSION that disagrees", () =>
    Effect.gen(function* () {
      const tree = releaseTree("2.0.0")
      chmodSync(join(tree, "bin/archy"), 0o644)
      writeFileSync(join(tree, "lib/archy.mjs"), "")
      const e1 = yield* refused(tree, "1.0.0")
      assert.deepStrictEqual(
        violationsOf(e1).map((v) => `${v.path} ${v.check}`),
        ["./bin/archy layout", "./VERSION version"]
      )
      const bare = releaseTree()
      const e2 = yield* refused(join(bare, "web"))
      assert.includeMembers(
        violationsOf(e2).map((v) => v.path),
        ["./bin/archy", "./lib/archy.mjs", "./web/index.html", "./apps"]
      )
    })
  )

  it.effect("refuses an OUTDIR inside the tree", () =>
    Effect.gen(function* () {
      const tree = releaseTree("1.0.0")
      const key = yield* keyPair
      const r = yield* Effect.result(
        buildRelease({
          from: tree,
          version: "1.0.0",
          keyFile: key.privateKeyFile,
          outDir: join(tree, "dist")
        })
      )
      assert.strictEqual(r._tag, "Failure")
      assert.match(
        (r as { failure: ReleaseError }).failure.message,
        /\.\/dist\/archy-1\.0\.0\.tar\.gz: the output is inside the tree/
      )
      assert.isFalse(existsSync(join(tree, "dist")))
    })
  )

  it.effect("refuses a bad version before touching anything", () =>
    Effect.gen(function* () {
      for (const version of ["v1.0.0", "1.0", "1.0.0/../x", "", "1.0.0 beta", "x".repeat(70)]) {
        const error = yield* refused(releaseTree(), version)
        assert.strictEqual(error.reason._tag, "InvalidVersion", version)
      }
    })
  )

  it.effect("normalizes a messy tree into exactly the contract's modes, owners and mtime", () =>
    Effect.gen(function* () {
      const tree = releaseTree()
      writeTree(tree, { "web/css/site.css": "body{}\n", "apps/demo/hook.sh": "#!/bin/sh\n" })
      chmodSync(join(tree, "web/css"), 0o700)
      chmodSync(join(tree, "apps"), 0o700)
      chmodSync(join(tree, "web/index.html"), 0o600)
      chmodSync(join(tree, "web/css/site.css"), 0o640)
      chmodSync(join(tree, "apps/demo/hook.sh"), 0o775)
      chmodSync(join(tree, "bin/archy"), 0o700)
      symlinkSync("index.html", join(tree, "web/home.html"))
      const key = yield* keyPair
      const outDir = join(tempDir(), "out")
      const result = yield* buildRelease({
        from: tree,
        version: "1.2.3",
        keyFile: key.privateKeyFile,
        outDir
      })
      const entries = yield* Effect.promise(() => readEntries(result.tarball))
      assert.deepStrictEqual(
        entries.map((e) => `${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid} ${e.name}`),
        [
          "directory 755 0:0 ./",
          "file 644 0:0 ./VERSION",
          "directory 755 0:0 ./apps",
          "directory 755 0:0 ./apps/demo",
          "file 755 0:0 ./apps/demo/hook.sh",
          "file 644 0:0 ./apps/demo/manifest.yml",
          "directory 755 0:0 ./bin",
          "file 755 0:0 ./bin/archy",
          "directory 755 0:0 ./lib",
          "file 644 0:0 ./lib/archy.mjs",
          "directory 755 0:0 ./web",
          "directory 755 0:0 ./web/css",
          "file 644 0:0 ./web/css/site.css",
          "symlink 777 0:0 ./web/home.html",
          "file 644 0:0 ./web/index.html"
        ]
      )
      assert.isTrue(entries.every((e) => e.mtime === 946_684_800_000))
      assert.strictEqual(entries.find((e) => e.name === "./web/home.html")?.linkname, "index.html")
      // the source tree is untouched
      assert.strictEqual(statSync(join(tree, "apps")).mode & 0o7777, 0o700)
      assert.strictEqual(statSync(join(tree, "web/index.html")).mode & 0o7777, 0o600)
      assert.isFalse(existsSync(join(tree, "VERSION")))
    })
  )

  it.effect("writes the tarball, the signed manifest and the latest pair, and nothing else", () =>
    Effect.gen(function* () {
      const key = yield* keyPair
      const outDir = join(tempDir(), "out")
      const result = yield* buildRelease({
        from: releaseTree("1.0.0"),
        version: "1.0.0",
        keyFile: key.privateKeyFile,
        outDir
      })
      assert.deepStrictEqual(listDir(outDir), [
        "archy-1.0.0.release.json",
        "archy-1.0.0.release.json.sig",
        "archy-1.0.0.tar.gz",
        "latest.release.json",
        "latest.release.json.sig"
      ])
      const json = readFileSync(result.manifestFile)
      assert.deepStrictEqual(readFileSync(join(outDir, "latest.release.json")), json)
      assert.deepStrictEqual(
        readFileSync(join(outDir, "latest.release.json.sig")),
        readFileSync(result.signatureFile)
      )
      const manifest = JSON.parse(json.toString("utf8"))
      assert.deepStrictEqual(Object.keys(manifest), [
        "format",
        "version",
        "file",
        "sha256",
        "size",
        "created"
      ])
      assert.strictEqual(manifest.format, 1)
      assert.strictEqual(manifest.file, "archy-1.0.0.tar.gz")
      assert.strictEqual(manifest.size, statSync(result.tarball).size)
      assert.match(manifest.sha256, /^[0-9a-f]{64}$/)
      assert.match(manifest.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      // a second version moves latest; the first stays published
      const second = yield* buildRelease({
        from: releaseTree(),
        version: "1.1.0",
        keyFile: key.privateKeyFile,
        outDir
      })
      assert.deepStrictEqual(
        readFileSync(join(outDir, "latest.release.json")),
        readFileSync(second.manifestFile)
      )
      assert.isTrue(existsSync(result.tarball))
      // a published version is never overwritten
      const again = yield* Effect.result(
        buildRelease({ from: releaseTree(), version: "1.0.0", keyFile: key.privateKeyFile, outDir })
      )
      assert.strictEqual(again._tag, "Failure")
      assert.deepStrictEqual(readFileSync(result.manifestFile), json)
    })
  )

  it.effect("is reproducible: the same tree gives the same tarball bytes", () =>
    Effect.gen(function* () {
      const key = yield* keyPair
      const a = yield* buildRelease({
        from: releaseTree(),
        version: "3.0.0",
        keyFile: key.privateKeyFile,
        outDir: join(tempDir(), "a")
      })
      const b = yield* buildRelease({
        from: releaseTree(),
        version: "3.0.0",
        keyFile: key.privateKeyFile,
        outDir: join(tempDir(), "b")
      })
      assert.strictEqual(a.manifest.sha256, b.manifest.sha256)
    })
  )

  it.effect("refuses a public key or a missing file as the signing key", () =>
    Effect.gen(function* () {
      const key = yield* keyPair
      for (const keyFile of [key.publicKeyFile, join(tempDir(), "missing.key")]) {
        const outDir = join(tempDir(), "out")
        const r = yield* Effect.result(
          buildRelease({ from: releaseTree(), version: "1.0.0", keyFile, outDir })
        )
        assert.strictEqual(r._tag, "Failure")
        assert.isFalse(existsSync(outDir))
      }
    })
  )
})

describe("generateKeyPair", () => {
  it.effect("writes a 0600 PKCS#8 private key and a 0644 SPKI public key, never over an existing one", () =>
    Effect.gen(function* () {
      const out = join(tempDir(), "k")
      const files = yield* generateKeyPair({ out })
      assert.strictEqual(statSync(files.privateKeyFile).mode & 0o777, 0o600)
      assert.strictEqual(statSync(files.publicKeyFile).mode & 0o777, 0o644)
      assert.match(readFileSync(files.privateKeyFile, "utf8"), /^-----BEGIN PRIVATE KEY-----/)
      assert.match(readFileSync(files.publicKeyFile, "utf8"), /^-----BEGIN PUBLIC KEY-----/)
      const before = readFileSync(out)
      const again = yield* Effect.result(generateKeyPair({ out }))
      assert.strictEqual(again._tag, "Failure")
      assert.deepStrictEqual(readFileSync(out), before)
    })
  )
})
