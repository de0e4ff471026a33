/**
 * Over-the-air updates end to end, with real processes and files: releases 1.0.0 and 2.0.0 staged
 * and built with `archy release build`, served by an HTTP mirror on 127.0.0.1; an install dir with
 * 1.0.0 as `current`; nginx serving `<install>/current/web` over TLS with workers as `nobody`, as on
 * a node; a supervisor that starts `<install>/current/bin/archy daemon` again whenever it exits (as
 * systemd's Restart=always); podman a private store (the daemon reconciles the release's catalog).
 *
 * - 1.0.0 -> 2.0.0 with a healthy web UI commits (through a mirror that is down and one that
 *   serves a bad signature first);
 * - 1.0.0 -> 2.0.0 whose release root becomes mode 0700 after unpacking (FM5: what an extractor
 *   that kept the tarball's root mode did; the build and extract checks refuse such a tarball, so
 *   the test makes the extracted tree so) answers 500 through nginx and rolls back to 1.0.0 by
 *   itself, with a fixture app of 2.0.0's catalog removed again (planned back to 1.0.0's Desired);
 * - a tampered tarball, a bad signature, and a signed tarball with a 0700 root are refused with
 *   the install dir byte-identical;
 * - the daemon SIGKILLed right after each step of apply (unpack, marker, switch: the test-only
 *   ARCHY_OTA_CRASH_AFTER hook) comes back on one consistent version;
 * - mirror failover for `update check`: down, hanging, tampered, then good.
 */
import { spawnSync } from "node:child_process"
import { createHash, createPrivateKey, sign } from "node:crypto"
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Effect from "effect/Effect"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { extractRelease } from "../../packages/release/src/index.ts"
import { fixtureAppsDir } from "../fixtures/fixtures.ts"
import { busyboxV1, busyboxV2 } from "../images/images.ts"
import {
  archy,
  archyAsync,
  buildRelease,
  getWebUi,
  keygen,
  type Mirror,
  type Nginx,
  type Supervisor,
  snapshot,
  stageTree,
  startMirror,
  startNginx,
  supervise
} from "./support/OtaNode.ts"
import { missing, onPath } from "./support/Prerequisites.ts"
import {
  copyCatalog,
  freePort,
  makePrivatePodman,
  type PrivatePodman,
  privatePodmanMissing
} from "./support/PrivatePodman.ts"

const skip = missing(
  "the OTA suite",
  privatePodmanMissing([busyboxV1, busyboxV2]),
  onPath("nginx", "scripts/install-test-deps.sh installs nginx-light"),
  onPath("openssl", "scripts/install-test-deps.sh installs it")
)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const slow = { timeout: 180_000 }
/** How long a release has to prove itself here (90 s on a node). */
const verifySeconds = 25

interface Status {
  readonly current?: string
  readonly running?: string
  readonly previous?: string
  readonly pending?: { readonly from: string; readonly to: string; readonly boots: number }
  readonly last?: {
    readonly outcome: string
    readonly from: string
    readonly to: string
    readonly reason?: string
    readonly failure?: { readonly probe: string; readonly status?: number; readonly error: string }
  }
}

describe.skipIf(skip !== undefined)(
  "OTA update, verification and rollback (real nginx, podman, files)",
  () => {
    let work = ""
    let podman: PrivatePodman | undefined
    let nginx: Nginx | undefined
    let good: Mirror | undefined
    let down = ""
    let badSig: Mirror | undefined
    let daemon: Supervisor | undefined
    const installDir = () => join(work, "install")
    const stateDir = () => join(work, "state")
    const key = () => join(work, "keys/release.key")
    const out = (name: string) => join(work, "out", name)
    let port = 0

    const daemonArgs = (mirrors: ReadonlyArray<string>) => [
      "--socket",
      podman!.socketPath,
      "--apps",
      join(installDir(), "current/apps"),
      "--install-dir",
      installDir(),
      "--update-mirrors",
      mirrors.join(","),
      "--update-key",
      `${key()}.pub`,
      "--update-timeout",
      "3",
      "--webui-url",
      nginx!.url,
      "--verify-timeout",
      String(verifySeconds),
      "--interval",
      "30"
    ]

    /** A node on 1.0.0: the tarball unpacked into releases/1.0.0, `current` pointing at it. */
    const installV1 = async () => {
      rmSync(installDir(), { recursive: true, force: true })
      rmSync(stateDir(), { recursive: true, force: true })
      mkdirSync(join(installDir(), "releases"), { recursive: true })
      chmodSync(installDir(), 0o755)
      await Effect.runPromise(
        extractRelease(join(out("v1"), "archy-1.0.0.tar.gz"), join(installDir(), "releases/1.0.0"))
      )
      spawnSync("ln", ["-s", "releases/1.0.0", join(installDir(), "current")])
    }

    const startDaemon = async (mirrors: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}) => {
      port = await freePort()
      daemon = supervise({
        installDir: installDir(),
        stateDir: stateDir(),
        port,
        args: daemonArgs(mirrors),
        env: { ARCHY_NODE: process.execPath, ...env }
      })
      await daemon.waitUp()
      return daemon
    }

    const stopDaemon = async () => {
      await daemon?.stop()
      daemon = undefined
    }

    const status = async (): Promise<Status> => {
      const r = await daemon!.rpc("update.status")
      if (r.error !== undefined) throw new Error(`update.status: ${r.error.message}`)
      return r.result as Status
    }

    /** Waits until no verification is pending and the daemon runs what `current` points at. */
    const settled = async (timeoutMs = 90_000): Promise<Status> => {
      const deadline = Date.now() + timeoutMs
      let last: Status | string = "no answer"
      while (Date.now() < deadline) {
        const s = await status().catch((e: Error) => e.message)
        last = s
        if (typeof s !== "string" && s.pending === undefined && s.running === s.current) return s
        await sleep(250)
      }
      throw new Error(
        `not settled within ${timeoutMs} ms: ${JSON.stringify(last)}\n${daemon?.output().slice(-4_000)}`
      )
    }

    /** Waits until both fx-worker containers run `image`; the `podman ps` lines. */
    const workersOn = async (image: string, timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs
      let lines: ReadonlyArray<string> = []
      while (Date.now() < deadline) {
        lines = podman!
          .cliOk([
            "ps",
            "-a",
            "--filter",
            "name=archy-fx-worker",
            "--format",
            "{{.Names}} {{.Image}} {{.Status}}"
          ])
          .trim()
          .split("\n")
        if (lines.filter((l) => l.includes(`${image} Up`)).length === 2 && lines.length === 2) return lines
        await sleep(250)
      }
      throw new Error(
        `fx-worker is not running on ${image}: ${lines.join("; ")}\n${daemon?.output().slice(-3_000)}`
      )
    }

    const page = async () => {
      const r = await getWebUi(nginx!.url)
      return { status: r.status, version: /<p>archy (\S+)<\/p>/.exec(r.body)?.[1] }
    }

    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), "archy-ota-"))
      chmodSync(work, 0o755)
      mkdirSync(join(work, "keys"))
      keygen(key())
      const apps = join(work, "fixture-apps")
      mkdirSync(apps)
      await copyCatalog(join(fixtureAppsDir, "fx-worker"), join(apps, "fx-worker"))
      // Both releases ship fx-worker; 2.0.0's runs busybox:2, so a rollback visibly plans it back.
      mkdirSync(join(work, "fixture-apps-2"))
      cpSync(join(apps, "fx-worker"), join(work, "fixture-apps-2/fx-worker"), { recursive: true })
      const manifest2 = join(work, "fixture-apps-2/fx-worker/manifest.yml")
      writeFileSync(manifest2, readFileSync(manifest2, "utf8").replaceAll(busyboxV1, busyboxV2))
      stageTree(join(work, "tree-1"), {
        version: "1.0.0",
        page: "archy 1.0.0",
        apps: [join(apps, "fx-worker")]
      })
      stageTree(join(work, "tree-2"), {
        version: "2.0.0",
        page: "archy 2.0.0",
        apps: [join(work, "fixture-apps-2/fx-worker")]
      })
      buildRelease(join(work, "tree-1"), "1.0.0", key(), out("v1"))
      buildRelease(join(work, "tree-2"), "2.0.0", key(), out("v2"))

      podman = makePrivatePodman({ prefix: "archy-ota-" })
      podman.watchNetwork("archipelago")
      podman.copyImages([busyboxV1, busyboxV2])
      await podman.startService()
      mkdirSync(installDir(), { recursive: true })
      nginx = await startNginx(join(work, "nginx"), installDir(), await freePort())
      good = await startMirror({ kind: "serve", dir: out("v2") })
      badSig = await startMirror({ kind: "bad-signature", dir: out("v2") })
      down = `http://127.0.0.1:${await freePort()}`
    }, 300_000)

    afterAll(async () => {
      await stopDaemon()
      await nginx?.stop()
      await good?.close()
      await badSig?.close()
      const problems = (await podman?.dispose()) ?? []
      if (work !== "") rmSync(work, { recursive: true, force: true })
      if (problems.length > 0) throw new Error(`cleanup: ${problems.join("; ")}`)
    }, 120_000)

    it(
      "1.0.0 -> 2.0.0 with a healthy web UI commits, past a mirror that is down and one with a bad signature",
      slow,
      async () => {
        await installV1()
        await startDaemon([down, badSig!.url, good!.url])
        assert.deepStrictEqual(await page(), { status: 200, version: "1.0.0" })
        const before = await settled()
        assert.strictEqual(before.current, "1.0.0")

        const applied = await daemon!.rpc("update.apply")
        assert.isUndefined(applied.error, JSON.stringify(applied.error))
        assert.deepInclude(applied.result as object, { from: "1.0.0", to: "2.0.0", mirror: good!.url })
        const after = await settled()
        assert.strictEqual(after.current, "2.0.0")
        assert.strictEqual(after.running, "2.0.0")
        assert.strictEqual(after.previous, "1.0.0")
        assert.deepInclude(after.last as object, { outcome: "committed", from: "1.0.0", to: "2.0.0" })
        assert.deepStrictEqual(await page(), { status: 200, version: "2.0.0" })
        await workersOn(busyboxV2)
        assert.isFalse(existsSync(join(installDir(), "update-pending.json")))
        assert.isTrue(
          existsSync(join(installDir(), "releases/1.0.0/bin/archy")),
          "the previous release is kept"
        )
        assert.isAtLeast(daemon!.starts(), 2, "the daemon restarted into 2.0.0")

        // The CLI shows the same through the daemon.
        const cli = archy(["update", "status", "--state-dir", stateDir(), "--port", String(port)])
        assert.strictEqual(cli.status, 0, cli.stderr)
        assert.match(cli.stdout, /current:\s+2\.0\.0/)
        assert.match(cli.stdout, /last:\s+committed 1\.0\.0 -> 2\.0\.0/)
        // And back by hand: the kept previous release.
        const back = await daemon!.rpc("update.rollback")
        assert.isUndefined(back.error, JSON.stringify(back.error))
        await sleep(500)
        await daemon!.waitUp()
        const rolled = await settled()
        assert.strictEqual(rolled.current, "1.0.0")
        assert.strictEqual(rolled.running, "1.0.0")
        assert.strictEqual(rolled.previous, "2.0.0")
        assert.deepInclude(rolled.last as object, { outcome: "rolled-back", reason: "requested by the user" })
        assert.deepStrictEqual(await page(), { status: 200, version: "1.0.0" })
        await workersOn(busyboxV1)
        await stopDaemon()
      }
    )

    it(
      "1.0.0 -> 2.0.0 whose release root turns 0700 (FM5) answers 500 through nginx and rolls back by itself",
      slow,
      async () => {
        await installV1()
        await startDaemon([good!.url])
        await settled()
        await workersOn(busyboxV1)
        const outputBefore = daemon!.output().length
        const root = join(installDir(), "releases/2.0.0")
        // Make the unpacked tree 0700 as soon as it appears, before its daemon starts.
        let made0700 = false
        const watcher = (async () => {
          const deadline = Date.now() + 60_000
          while (!made0700 && Date.now() < deadline) {
            if (existsSync(join(root, "VERSION"))) {
              chmodSync(root, 0o700)
              made0700 = true
            }
            await sleep(5)
          }
        })()
        const applied = await daemon!.rpc("update.apply")
        assert.isUndefined(applied.error, JSON.stringify(applied.error))
        await watcher
        assert.isTrue(made0700)

        // The 2.0.0 daemon comes up, its web UI fails, and it rolls back to 1.0.0 by itself.
        const after = await settled(120_000)
        assert.strictEqual(after.current, "1.0.0")
        assert.strictEqual(after.running, "1.0.0")
        assert.strictEqual(after.last?.outcome, "rolled-back")
        assert.strictEqual(after.last?.to, "2.0.0")
        assert.strictEqual(after.last?.failure?.probe, "web-ui")
        assert.strictEqual(after.last?.failure?.status, 500)
        assert.match(nginx!.errorLog(), /Permission denied/)
        assert.deepStrictEqual(await page(), { status: 200, version: "1.0.0" })
        assert.isAtLeast(daemon!.starts(), 3, "1.0.0, 2.0.0, then 1.0.0 again")

        // 2.0.0's catalog ran fx-worker on busybox:2; planned back to 1.0.0's Desired, it is on busybox:1.
        assert.match(
          daemon!.output().slice(outputBefore),
          /Recreate container:archy-fx-worker/,
          `2.0.0 recreated fx-worker:\n${daemon!.output().slice(outputBefore).slice(-6000)}`
        )
        await workersOn(busyboxV1)

        const cli = archy(["update", "status", "--state-dir", stateDir(), "--port", String(port)])
        assert.match(cli.stdout, /last:\s+rolled-back 1\.0\.0 -> 2\.0\.0/)
        assert.match(cli.stdout, /why:\s+web-ui https:\/\/127\.0\.0\.1:\d+\/: HTTP 500/)
        await stopDaemon()
      }
    )

    it(
      "a tampered tarball, a bad signature and a signed tarball with a 0700 root are refused before anything changes",
      slow,
      async () => {
        await installV1()
        await startDaemon([good!.url])
        await settled()
        const before = snapshot(installDir())
        const cases: ReadonlyArray<readonly [string, () => void, RegExp]> = [
          ["tampered", () => (good!.mode = { kind: "tamper", dir: out("v2") }), /sha256/],
          ["bad signature", () => (good!.mode = { kind: "bad-signature", dir: out("v2") }), /signature/],
          ["0700 root", () => (good!.mode = { kind: "serve", dir: out("v2-0700") }), /drwx------|0700|mode/]
        ]
        makeSigned0700()
        try {
          for (const [name, arrange, why] of cases) {
            arrange()
            const r = await daemon!.rpc("update.apply")
            assert.isDefined(r.error, `${name}: applied`)
            assert.match(r.error!.message, why, name)
            assert.deepStrictEqual(snapshot(installDir()), before, `${name}: the install changed`)
          }
        } finally {
          good!.mode = { kind: "serve", dir: out("v2") }
        }
        const s = await status()
        assert.strictEqual(s.current, "1.0.0")
        assert.isUndefined(s.last)
        assert.strictEqual(daemon!.starts(), 1, "no restart")
        await stopDaemon()
      }
    )

    it("a 2.0.0 whose daemon cannot even start is rolled back before its fourth start", slow, async () => {
      const broken = out("v2-broken")
      if (!existsSync(broken)) {
        const tree = join(work, "tree-broken")
        stageTree(tree, { version: "2.0.0", page: "archy 2.0.0" })
        writeFileSync(join(tree, "lib/archy.mjs"), 'throw new Error("this release is broken")\n')
        buildRelease(tree, "2.0.0", key(), broken)
      }
      await installV1()
      good!.mode = { kind: "serve", dir: broken }
      try {
        await startDaemon([good!.url])
        await settled()
        const applied = await daemon!.rpc("update.apply")
        assert.isUndefined(applied.error, JSON.stringify(applied.error))
        await sleep(1_000)
        const s = await settled(120_000)
        assert.strictEqual(s.current, "1.0.0")
        assert.strictEqual(s.running, "1.0.0")
        assert.strictEqual(s.last?.outcome, "rolled-back")
        assert.strictEqual(s.last?.failure?.probe, "boot")
        assert.match(s.last?.failure?.error ?? "", /started 3 times without reaching a verdict/)
        assert.strictEqual(
          daemon!.exits().filter((e) => e === "exit 1").length,
          3,
          daemon!.exits().join(", ")
        )
        assert.match(daemon!.output(), /this release is broken/)
        assert.deepStrictEqual(await page(), { status: 200, version: "1.0.0" })
      } finally {
        good!.mode = { kind: "serve", dir: out("v2") }
        await stopDaemon()
      }
    })

    /** A signed release whose tarball's root entry is 0700: the build check bypassed by hand. */
    const makeSigned0700 = () => {
      const dir = out("v2-0700")
      if (existsSync(dir)) return
      const tree = join(work, "tree-0700")
      stageTree(tree, { version: "2.0.0", page: "archy 2.0.0" })
      mkdirSync(dir, { recursive: true })
      const tarball = join(dir, "archy-2.0.0.tar.gz")
      chmodSync(tree, 0o700)
      spawnSync("tar", ["-czf", tarball, "--owner=0", "--group=0", "-C", tree, "."])
      const bytes = readFileSync(tarball)
      const manifest = Buffer.from(
        `${JSON.stringify({
          format: 1,
          version: "2.0.0",
          file: "archy-2.0.0.tar.gz",
          sha256: createHash("sha256").update(bytes).digest("hex"),
          size: bytes.length,
          created: new Date().toISOString()
        })}\n`
      )
      const signature = sign(null, manifest, createPrivateKey(readFileSync(key(), "utf8"))).toString("base64")
      writeFileSync(join(dir, "latest.release.json"), manifest)
      writeFileSync(join(dir, "latest.release.json.sig"), `${signature}\n`)
    }

    for (const step of ["unpack", "marker", "switch"] as const) {
      it(
        `kill -9 right after "${step}" leaves a node that boots into one consistent version`,
        slow,
        async () => {
          await installV1()
          await startDaemon([good!.url], { ARCHY_OTA_CRASH_AFTER: step })
          await settled()
          // The daemon dies mid-call: the connection breaks.
          const r = await daemon!.rpc("update.apply").then(
            (a) => JSON.stringify(a),
            (e: Error) => `broken: ${e.message}`
          )
          assert.match(r, /^broken/, `the apply finished instead of dying: ${r}`)
          await sleep(500)
          await daemon!.waitUp()
          const s = await settled()
          assert.include(daemon!.exits(), "SIGKILL")
          const expected = step === "switch" ? "2.0.0" : "1.0.0"
          assert.strictEqual(s.current, expected)
          assert.strictEqual(s.running, expected)
          assert.deepStrictEqual(await page(), { status: 200, version: expected })
          if (step === "unpack") assert.isUndefined(s.last, "no marker was written: nothing to record")
          if (step === "marker") assert.deepInclude(s.last as object, { outcome: "interrupted", to: "2.0.0" })
          if (step === "switch") assert.deepInclude(s.last as object, { outcome: "committed", to: "2.0.0" })
          await stopDaemon()
        }
      )
    }

    it(
      "update check fails over: a mirror down, one that hangs, one with a tampered manifest, a stale one, then a good one",
      slow,
      async () => {
        await installV1()
        const hang = await startMirror({ kind: "hang" })
        const tampered = await startMirror({ kind: "serve", dir: join(work, "out/tampered") })
        const stale = await startMirror({ kind: "serve", dir: out("v1") })
        mkdirSync(join(work, "out/tampered"), { recursive: true })
        const manifest = readFileSync(join(out("v2"), "latest.release.json"), "utf8")
        writeFileSync(join(work, "out/tampered/latest.release.json"), manifest.replace("2.0.0", "2.0.1"))
        writeFileSync(
          join(work, "out/tampered/latest.release.json.sig"),
          readFileSync(join(out("v2"), "latest.release.json.sig"))
        )
        try {
          const started = Date.now()
          const r = await archyAsync([
            "update",
            "check",
            "--json",
            "--direct",
            "--install-dir",
            installDir(),
            "--update-mirrors",
            [down, hang.url, tampered.url, stale.url, good!.url].join(","),
            "--update-key",
            `${key()}.pub`,
            "--update-timeout",
            "2"
          ])
          assert.strictEqual(r.code, 0, r.stderr)
          assert.deepInclude(JSON.parse(r.stdout), {
            current: "1.0.0",
            latest: "2.0.0",
            available: true,
            mirror: good!.url
          })
          assert.isBelow(Date.now() - started, 60_000)
          assert.include(hang.requests, "/latest.release.json")
          assert.include(tampered.requests, "/latest.release.json")

          // A mirror that only has what runs: up to date, not an error.
          const upToDate = await archyAsync([
            "update",
            "check",
            "--direct",
            "--install-dir",
            installDir(),
            "--update-mirrors",
            stale.url,
            "--update-key",
            `${key()}.pub`
          ])
          assert.strictEqual(upToDate.code, 0, upToDate.stderr)
          assert.match(upToDate.stdout, /up to date: 1\.0\.0 \(the mirrors offer 1\.0\.0\)/)

          // With no good mirror left, the error names each one and why.
          const none = await archyAsync([
            "update",
            "check",
            "--direct",
            "--install-dir",
            installDir(),
            "--update-mirrors",
            [down, tampered.url].join(","),
            "--update-key",
            `${key()}.pub`,
            "--update-timeout",
            "2"
          ])
          assert.strictEqual(none.code, 1)
          assert.include(none.stderr, down)
          assert.match(none.stderr, /does not verify/)
        } finally {
          await hang.close()
          await tampered.close()
          await stale.close()
        }
      }
    )
  }
)
