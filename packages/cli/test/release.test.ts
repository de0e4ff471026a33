import { spawnSync } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, describe, it } from "@effect/vitest"

const root = fileURLToPath(new URL("../../..", import.meta.url))

/** Runs the real `archy` executable's `release` command. */
const archy = (...args: Array<string>) => {
  const result = spawnSync(
    process.execPath,
    ["--disable-warning=ExperimentalWarning", "packages/cli/src/bin.ts", "release", ...args],
    { cwd: root, encoding: "utf8", timeout: 30_000 }
  )
  if (result.error !== undefined) throw result.error
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

const dirs: Array<string> = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
const work = mkdtempSync(join(tmpdir(), "archy-cli-release-"))
dirs.push(work)

const tree = (name: string) => {
  const dir = join(work, name)
  for (const [path, text] of Object.entries({
    "bin/archy": "#!/bin/sh\n",
    "lib/archy.mjs": "//\n",
    "web/index.html": "<h1>x</h1>\n",
    "apps/demo/manifest.yml": "id: demo\n"
  })) {
    mkdirSync(join(dir, path, ".."), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  chmodSync(join(dir, "bin/archy"), 0o755)
  return dir
}

// Each archy run starts Node on the TypeScript sources (seconds on a busy 2-core machine).
describe("archy release", { timeout: 120_000 }, () => {
  const key = join(work, "release.key")

  it("keygen, build and verify a release; verify with the wrong key fails", () => {
    const k = archy("keygen", "--out", key)
    assert.strictEqual(k.status, 0, k.stderr)
    const b = archy(
      "build",
      "--from",
      tree("ok"),
      "--version",
      "0.9.0",
      "--key",
      key,
      "--out",
      join(work, "out")
    )
    assert.strictEqual(b.status, 0, b.stderr)
    assert.match(b.stdout, /built .*archy-0\.9\.0\.tar\.gz/)
    const tarball = join(work, "out", "archy-0.9.0.tar.gz")
    const manifest = join(work, "out", "archy-0.9.0.release.json")
    const v = archy("verify", tarball, "--manifest", manifest, "--pubkey", `${key}.pub`)
    assert.strictEqual(v.status, 0, v.stdout + v.stderr)
    assert.match(v.stdout, /ok {4}signature/)
    assert.match(v.stdout, /entries pass the release checks \(version 0\.9\.0\)/)
    archy("keygen", "--out", join(work, "other.key"))
    const wrong = archy("verify", tarball, "--manifest", manifest, "--pubkey", join(work, "other.key.pub"))
    assert.strictEqual(wrong.status, 1)
    assert.match(wrong.stdout, /FAIL {2}signature .* does not verify/)
  })

  it("build refuses a tree whose root is 0700, shows why, and writes nothing", () => {
    const dir = tree("root700")
    chmodSync(dir, 0o700)
    const out = join(work, "out700")
    const b = archy("build", "--from", dir, "--version", "1.0.0", "--key", key, "--out", out)
    assert.strictEqual(b.status, 1)
    assert.match(b.stderr, /\.\/: the tree's root is drwx------ \(0700\).*\(root-mode\)/)
    assert.isFalse(existsSync(out))
  })

  it("build refuses a version with a slash", () => {
    const b = archy(
      "build",
      "--from",
      tree("v"),
      "--version",
      "1.0/2",
      "--key",
      key,
      "--out",
      join(work, "o")
    )
    assert.strictEqual(b.status, 1)
    assert.match(b.stderr, /invalid version "1\.0\/2": it contains '\/'/)
  })

  it("verify prints each violation of a hand-made tarball", () => {
    const dir = tree("hand")
    writeFileSync(join(dir, "VERSION"), "1.0.0\n")
    chmodSync(dir, 0o700)
    chmodSync(join(dir, "web"), 0o750)
    const file = join(work, "hand.tar.gz")
    const t = spawnSync("tar", ["-C", dir, "--owner=1000", "--group=1000", "-czf", file, "."])
    assert.strictEqual(t.status, 0, String(t.stderr))
    const v = archy("verify", file)
    assert.strictEqual(v.status, 1)
    const fails = v.stdout.split("\n").filter((l) => l.startsWith("FAIL"))
    assert.includeMembers(
      fails.map((l) => l.replace(/^FAIL {2}(\S+):.*\((\S+)\)$/, "$1 $2")),
      ["./ root-mode", "./ owner", "./web dir-mode", "./bin/archy owner"]
    )
    assert.isTrue(readdirSync(work).includes("hand.tar.gz"))
  })
})
