import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync
} from "node:fs"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import {
  buildRelease,
  checkTarball,
  extractRelease,
  generateKeyPair,
  type ReleaseError,
  verifyRelease
} from "../src/index.ts"
import { cleanup, listDir, type RawEntry, rawTarball, releaseTree, tempDir, validEntries } from "./support.ts"

afterAll(cleanup)

const built = Effect.gen(function* () {
  const key = yield* generateKeyPair({ out: join(tempDir(), "release.key") })
  const outDir = join(tempDir(), "out")
  const result = yield* buildRelease({
    from: releaseTree("1.0.0"),
    version: "1.0.0",
    keyFile: key.privateKeyFile,
    outDir
  })
  return { key, ...result }
})

const failure = <A>(effect: Effect.Effect<A, ReleaseError>) =>
  Effect.gen(function* () {
    const r = yield* Effect.result(effect)
    assert.strictEqual(r._tag, "Failure")
    return (r as { failure: ReleaseError }).failure
  })

/** Hand-made tarballs that a careless or hostile builder could ship, with the check each trips. */
const hostile: ReadonlyArray<{
  readonly what: string
  readonly entries: Array<RawEntry>
  readonly expect: string
}> = [
  {
    what: "a 0700 root (FM5)",
    entries: validEntries().map((e) => (e.name === "./" ? { ...e, mode: 0o700 } : e)),
    expect: "./ root-mode"
  },
  {
    what: "a ../ entry",
    entries: [...validEntries(), { name: "./web/../../evil", body: "x" }],
    expect: "./web/../../evil dotdot"
  },
  {
    what: "an absolute path",
    entries: [...validEntries(), { name: "/etc/cron.d/evil", body: "x" }],
    expect: "/etc/cron.d/evil absolute-path"
  },
  {
    what: "a symlink leaving the tree",
    entries: [...validEntries(), { name: "./web/up", type: "symlink", linkname: "../../etc" }],
    expect: "./web/up link-escape"
  },
  {
    what: "a file written through a symlink",
    entries: [
      ...validEntries(),
      { name: "./web/sub", type: "symlink", linkname: "." },
      { name: "./web/sub/x", body: "x" }
    ],
    expect: "./web/sub/x through-symlink"
  },
  {
    what: "a fifo",
    entries: [...validEntries(), { name: "./web/pipe", type: "fifo", mode: 0o644 }],
    expect: "./web/pipe entry-type"
  },
  {
    what: "a device",
    entries: [...validEntries(), { name: "./web/null", type: "character-device", mode: 0o644 }],
    expect: "./web/null entry-type"
  },
  {
    what: "a hard link",
    entries: [...validEntries(), { name: "./web/hl", type: "link", linkname: "/etc/shadow" }],
    expect: "./web/hl entry-type"
  },
  {
    what: "a world-writable file",
    entries: validEntries().map((e) => (e.name === "./web/index.html" ? { ...e, mode: 0o666 } : e)),
    expect: "./web/index.html file-mode"
  },
  {
    what: "a 0700 directory",
    entries: validEntries().map((e) => (e.name === "./web" ? { ...e, mode: 0o700 } : e)),
    expect: "./web dir-mode"
  },
  {
    what: "a non-root owner",
    entries: validEntries().map((e) => (e.name === "./lib/archy.mjs" ? { ...e, uid: 1000, gid: 1000 } : e)),
    expect: "./lib/archy.mjs owner"
  },
  {
    what: "no root entry",
    entries: validEntries().filter((e) => e.name !== "./"),
    expect: "./ root-missing"
  },
  {
    what: "a duplicate entry",
    entries: [...validEntries(), { name: "web/index.html", body: "y" }],
    expect: "./web/index.html duplicate"
  },
  {
    what: "a file before its directory",
    entries: [
      ...validEntries().filter((e) => e.name !== "./web" && e.name !== "./web/index.html"),
      { name: "./web/index.html", body: "x" },
      { name: "./web", type: "directory" }
    ],
    expect: "./web/index.html parent-order"
  },
  {
    what: "a symlink over a directory and a file through it",
    entries: [
      ...validEntries(),
      { name: "./etc", type: "symlink", linkname: "web" },
      { name: "./etc/cron", body: "x" }
    ],
    expect: "./etc/cron through-symlink"
  },
  {
    what: "no launcher",
    entries: validEntries().filter((e) => e.name !== "./bin/archy"),
    expect: "./bin/archy layout"
  }
]

describe("checkTarball", () => {
  it.effect("passes a built release and a valid hand-made one", () =>
    Effect.gen(function* () {
      const { tarball } = yield* built
      assert.deepStrictEqual(yield* checkTarball(tarball), [])
      const file = yield* Effect.promise(() => rawTarball(join(tempDir(), "ok.tar.gz"), validEntries()))
      assert.deepStrictEqual(yield* checkTarball(file), [])
    })
  )

  for (const { what, entries, expect } of hostile)
    it.effect(`catches ${what}`, () =>
      Effect.gen(function* () {
        const file = yield* Effect.promise(() => rawTarball(join(tempDir(), "bad.tar.gz"), entries))
        const violations = yield* checkTarball(file)
        assert.deepStrictEqual(
          violations.map((v) => `${v.path} ${v.check}`),
          [expect]
        )
      })
    )

  it.effect("reports every violation at once", () =>
    Effect.gen(function* () {
      const entries = [
        ...validEntries().map((e) => (e.name === "./" ? { ...e, mode: 0o700 } : e)),
        { name: "../x", body: "x" },
        { name: "/abs", body: "x" }
      ]
      const file = yield* Effect.promise(() => rawTarball(join(tempDir(), "bad.tar.gz"), entries))
      const violations = yield* checkTarball(file)
      assert.deepStrictEqual(violations.map((v) => v.check).sort(), ["absolute-path", "dotdot", "root-mode"])
    })
  )

  it.effect("says a truncated or non-gzip file is unreadable", () =>
    Effect.gen(function* () {
      const { tarball } = yield* built
      const cut = join(tempDir(), "cut.tar.gz")
      writeFileSync(cut, readFileSync(tarball).subarray(0, 200))
      const e1 = yield* failure(checkTarball(cut))
      assert.strictEqual(e1.reason._tag, "TarballUnreadable")
      const text = join(tempDir(), "text.tar.gz")
      writeFileSync(text, "hello")
      const e2 = yield* failure(checkTarball(text))
      assert.strictEqual(e2.reason._tag, "TarballUnreadable")
      assert.match(e2.message, /text\.tar\.gz is not a readable gzip'd tar/)
    })
  )
})

describe("verifyRelease", () => {
  it.effect("accepts a built release and returns its manifest", () =>
    Effect.gen(function* () {
      const r = yield* built
      const manifest = yield* verifyRelease({
        manifestFile: r.manifestFile,
        signatureFile: r.signatureFile,
        tarball: r.tarball,
        publicKey: r.key.publicKeyFile
      })
      assert.strictEqual(manifest.version, "1.0.0")
      // PEM text works as well as a path
      yield* verifyRelease({
        manifestFile: r.manifestFile,
        tarball: r.tarball,
        publicKey: readFileSync(r.key.publicKeyFile, "utf8")
      })
    })
  )

  it.effect("catches a tampered tarball", () =>
    Effect.gen(function* () {
      const r = yield* built
      const bytes = readFileSync(r.tarball)
      bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0xff
      const tampered = join(tempDir(), "archy-1.0.0.tar.gz")
      writeFileSync(tampered, bytes)
      const e = yield* failure(
        verifyRelease({ manifestFile: r.manifestFile, tarball: tampered, publicKey: r.key.publicKeyFile })
      )
      assert.strictEqual(e.reason._tag, "TarballMismatch")
      assert.match(e.message, /sha256 is [0-9a-f]{64}, the manifest says/)
    })
  )

  it.effect("catches a wrong signature, a changed manifest and a signature from another key", () =>
    Effect.gen(function* () {
      const r = yield* built
      const other = yield* generateKeyPair({ out: join(tempDir(), "other.key") })
      const e1 = yield* failure(
        verifyRelease({ manifestFile: r.manifestFile, tarball: r.tarball, publicKey: other.publicKeyFile })
      )
      assert.strictEqual(e1.reason._tag, "SignatureInvalid")
      // one changed byte in the manifest (same JSON meaning: a space) breaks the signature
      const dir = tempDir()
      const manifestFile = join(dir, "m.json")
      writeFileSync(manifestFile, readFileSync(r.manifestFile, "utf8").replace("{", "{ "))
      copyFileSync(r.signatureFile, `${manifestFile}.sig`)
      const e2 = yield* failure(
        verifyRelease({ manifestFile, tarball: r.tarball, publicKey: r.key.publicKeyFile })
      )
      assert.strictEqual(e2.reason._tag, "SignatureInvalid")
      writeFileSync(`${manifestFile}.sig`, "not base64 !")
      const e3 = yield* failure(
        verifyRelease({ manifestFile, tarball: r.tarball, publicKey: r.key.publicKeyFile })
      )
      assert.match(e3.message, /not base64/)
    })
  )
})

describe("extractRelease", () => {
  it.effect("extracts a release atomically with its modes", () =>
    Effect.gen(function* () {
      const r = yield* built
      const parent = join(tempDir(), "releases")
      const dest = join(parent, "1.0.0")
      const result = yield* extractRelease(r.tarball, dest)
      assert.strictEqual(result.version, "1.0.0")
      assert.deepStrictEqual(listDir(parent), ["1.0.0"])
      assert.deepStrictEqual(listDir(dest), ["VERSION", "apps", "bin", "lib", "web"])
      assert.strictEqual(statSync(dest).mode & 0o7777, 0o755)
      assert.strictEqual(statSync(join(dest, "bin/archy")).mode & 0o7777, 0o755)
      assert.strictEqual(statSync(join(dest, "web/index.html")).mode & 0o7777, 0o644)
      assert.strictEqual(readFileSync(join(dest, "VERSION"), "utf8"), "1.0.0\n")
      // never over an existing directory
      const again = yield* failure(extractRelease(r.tarball, dest))
      assert.strictEqual(again.reason._tag, "AlreadyExists")
    })
  )

  it.effect("keeps symlinks inside the release as they are", () =>
    Effect.gen(function* () {
      const file = yield* Effect.promise(() =>
        rawTarball(join(tempDir(), "l.tar.gz"), [
          ...validEntries(),
          { name: "./web/home.html", type: "symlink", linkname: "index.html" }
        ])
      )
      const dest = join(tempDir(), "x")
      yield* extractRelease(file, dest)
      assert.strictEqual(readlinkSync(join(dest, "web/home.html")), "index.html")
    })
  )

  for (const { what, entries } of hostile)
    it.effect(`refuses ${what} before writing anything`, () =>
      Effect.gen(function* () {
        const file = yield* Effect.promise(() => rawTarball(join(tempDir(), "bad.tar.gz"), entries))
        const parent = join(tempDir(), "node")
        mkdirSync(parent)
        const e = yield* failure(extractRelease(file, join(parent, "releases", "1.0.0")))
        assert.strictEqual(e.reason._tag, "TarballRejected")
        assert.deepStrictEqual(listDir(parent), [])
        assert.isFalse(existsSync("/etc/cron.d/evil"))
      })
    )
})
