/**
 * image-recipe/build-overlay end to end: builds the node's overlay from this checkout and checks
 * exactly what is in it (every entry, its type, mode and owner; no stray file, no timer unit),
 * that it passes the release checks, that systemd accepts the daemon's unit inside it, and that
 * the archy link on PATH runs the bundled CLI on the release's own catalog.
 */
import { spawnSync } from "node:child_process"
import { cpSync, createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { createGunzip } from "node:zlib"
import { checkTarball, extractRelease } from "@archy/release"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as tar from "tar-stream"

const root = fileURLToPath(new URL("../..", import.meta.url))
const version = "1.0.0"
const release = `./opt/archipelago/releases/${version}`
const work = mkdtempSync(join(tmpdir(), "archy-overlay-test-"))
const overlay = join(work, "overlay.tar.gz")
afterAll(() => rmSync(work, { recursive: true, force: true }))

const listing = async (file: string) => {
  const extract = tar.extract()
  createReadStream(file).pipe(createGunzip()).pipe(extract)
  const lines: Array<string> = []
  for await (const entry of extract) {
    const h = entry.header
    const link = h.type === "symlink" ? ` -> ${h.linkname}` : ""
    lines.push(`${h.type} ${(h.mode & 0o7777).toString(8)} ${h.uid}:${h.gid} ${h.name}${link}`)
    for await (const _ of entry) {
      // skip the body
    }
  }
  return lines
}

/** Tar order: a directory, then its children by name, depth first (compare path components). */
const byComponents = (a: string, b: string): number => {
  const xs = a.split("/")
  const ys = b.split("/")
  for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
    if (xs[i]! !== ys[i]!) return xs[i]! < ys[i]! ? -1 : 1
  }
  return xs.length - ys.length
}

/** The catalog as committed: `git ls-files -s apps`, with the directories it implies. */
const catalogEntries = (): Array<string> => {
  const out = spawnSync("git", ["ls-files", "-s", "apps"], { cwd: root, encoding: "utf8" })
  assert.strictEqual(out.status, 0, out.stderr)
  const dirs = new Set<string>(["apps"])
  const files: Array<[string, string]> = []
  for (const line of out.stdout.trim().split("\n")) {
    const [meta, path] = line.split("\t") as [string, string]
    files.push([path, meta.startsWith("100755") ? "755" : "644"])
    const parts = path.split("/")
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"))
  }
  return [
    ...[...dirs].map((d) => [`${release}/${d}`, `directory 755 0:0 ${release}/${d}`] as const),
    ...files.map(([p, mode]) => [`${release}/${p}`, `file ${mode} 0:0 ${release}/${p}`] as const)
  ]
    .sort(([a], [b]) => byComponents(a, b))
    .map(([, line]) => line)
}

const expected = (): Array<string> => [
  "directory 755 0:0 ./",
  "directory 755 0:0 ./etc",
  "directory 755 0:0 ./etc/containers",
  "directory 755 0:0 ./etc/containers/containers.conf.d",
  "file 644 0:0 ./etc/containers/containers.conf.d/50-archipelago.conf",
  "directory 755 0:0 ./etc/containers/networks",
  "file 644 0:0 ./etc/containers/networks/archipelago.json",
  "directory 755 0:0 ./etc/systemd",
  "directory 755 0:0 ./etc/systemd/system",
  "file 644 0:0 ./etc/systemd/system/archipelago.service",
  "directory 755 0:0 ./etc/systemd/system/multi-user.target.wants",
  "symlink 777 0:0 ./etc/systemd/system/multi-user.target.wants/archipelago.service -> ../archipelago.service",
  "directory 755 0:0 ./opt",
  "directory 755 0:0 ./opt/archipelago",
  "directory 755 0:0 ./opt/archipelago/bin",
  "file 755 0:0 ./opt/archipelago/bin/archy-boot",
  `symlink 777 0:0 ./opt/archipelago/current -> releases/${version}`,
  "directory 755 0:0 ./opt/archipelago/releases",
  `directory 755 0:0 ${release}`,
  `file 644 0:0 ${release}/VERSION`,
  ...catalogEntries(),
  `directory 755 0:0 ${release}/bin`,
  `file 755 0:0 ${release}/bin/archy`,
  `directory 755 0:0 ${release}/lib`,
  `file 644 0:0 ${release}/lib/archy.mjs`,
  `directory 755 0:0 ${release}/web`,
  `file 644 0:0 ${release}/web/index.html`,
  "directory 755 0:0 ./usr",
  "directory 755 0:0 ./usr/local",
  "directory 755 0:0 ./usr/local/bin",
  "symlink 777 0:0 ./usr/local/bin/archy -> ../../../opt/archipelago/current/bin/archy"
]

beforeAll(() => {
  const r = spawnSync("bash", [join(root, "image-recipe/build-overlay"), overlay, version], {
    cwd: root,
    encoding: "utf8",
    timeout: 180_000
  })
  assert.strictEqual(r.status, 0, `build-overlay failed:\n${r.stdout}\n${r.stderr}`)
}, 200_000)

describe("image-recipe/build-overlay", () => {
  it("holds exactly the expected entries, owned by root with normalized modes", async () => {
    assert.deepStrictEqual(await listing(overlay), expected())
  })

  it("has no timer unit, in the overlay or in the recipe", async () => {
    assert.deepStrictEqual(
      (await listing(overlay)).filter((l) => l.includes(".timer")),
      []
    )
    assert.deepStrictEqual(
      readdirSync(join(root, "image-recipe")).filter((f) => f.endsWith(".timer")),
      []
    )
  })

  it.effect("passes the release checks (links stay inside, root drwxr-xr-x)", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* checkTarball(overlay, { layout: "any" }), [])
    })
  )

  it("declares the podman network archipelago, 10.89.0.0/24 via 10.89.0.1, in podman's own format", () => {
    const net = JSON.parse(readFileSync(join(root, "image-recipe/archipelago.json"), "utf8"))
    assert.strictEqual(net.name, "archipelago")
    assert.strictEqual(net.driver, "bridge")
    assert.match(net.id, /^[0-9a-f]{64}$/)
    assert.deepStrictEqual(net.subnets, [{ subnet: "10.89.0.0/24", gateway: "10.89.0.1" }])
  })

  describe("unpacked", () => {
    const dest = join(work, "image")
    beforeAll(async () => {
      await Effect.runPromise(extractRelease(overlay, dest, { layout: "any" }))
    })

    it("the unit says how the daemon runs and stops", () => {
      const unit = readFileSync(join(dest, "etc/systemd/system/archipelago.service"), "utf8")
      for (const line of [
        "ExecStartPre=-/opt/archipelago/bin/archy-boot",
        "ExecStart=/opt/archipelago/current/bin/archy daemon",
        "Restart=always",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=120",
        "WantedBy=multi-user.target"
      ])
        assert.include(unit.split("\n"), line)
    })

    // systemd-analyze comes with Debian's systemd package, also where systemd is not PID 1;
    // scripts/install-test-deps.sh installs it on CI.
    const analyze = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" })
    const haveAnalyze = analyze.status === 0
    if (!haveAnalyze && process.env.CI !== "true")
      console.warn(
        "overlay: systemd-analyze is not installed here; skipping the unit verification (CI runs it)"
      )
    it.skipIf(!haveAnalyze && process.env.CI !== "true")(
      "systemd-analyze verify accepts the unit inside the image",
      () => {
        // The image root: the overlay plus the base system's units (targets, podman.socket).
        cpSync("/usr/lib/systemd/system", join(dest, "usr/lib/systemd/system"), { recursive: true })
        const r = spawnSync("systemd-analyze", ["verify", `--root=${dest}`, "archipelago.service"], {
          encoding: "utf8",
          timeout: 60_000
        })
        assert.strictEqual(r.status, 0, r.stderr)
        // Unknown keys and other warnings exit 0 but print: none are allowed.
        assert.strictEqual(r.stderr.trim(), "")
        rmSync(join(dest, "usr/lib"), { recursive: true })
      }
    )

    const { ARCHY_APPS_DIR: _, ARCHY_HOME: __, ...withoutAppsDir } = process.env
    it("/usr/local/bin/archy runs the release's CLI on the release's catalog", () => {
      const r = spawnSync(join(dest, "usr/local/bin/archy"), ["validate"], {
        encoding: "utf8",
        env: { ...withoutAppsDir, ARCHY_NODE: process.execPath },
        timeout: 60_000
      })
      assert.strictEqual(r.status, 0, r.stderr)
      assert.include(r.stdout, `valid in ${join(dest, release.slice(2), "apps")}`)
      assert.isTrue(existsSync(join(dest, "opt/archipelago/current/VERSION")))
    })
  })
})
