/**
 * The bitcoind RPC password never leaks where an operator or another process can read it: not in
 * the daemon's logs, not in `podman inspect` of any container, not in `archy status` or
 * `archy plan` output, nor in the daemon's API answers. `archy doctor` passes on the healthy
 * node, and flags a container that carries the secret in its env, naming the container and the
 * secret but never printing the value.
 *
 * On a private podman store (its own `podman system service` and socket): the daemon removes
 * every container with our labels that its catalog does not name, so on the shared store it would
 * remove other runs' containers.
 */
import { mkdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { fixtureAppsDir, fixtureContainers } from "../fixtures/fixtures.ts"
import { busyboxV1 } from "../images/images.ts"
import { missing, type Ran, run } from "./support/Prerequisites.ts"
import {
  copyCatalog,
  type DaemonProcess,
  freePort,
  makePrivatePodman,
  type PrivatePodman,
  privatePodmanMissing,
  startDaemon
} from "./support/PrivatePodman.ts"

const root = new URL("../../", import.meta.url).pathname
const secretName = "bitcoin-rpc-password"
const leaky = "archy-fx-leaky"
const slow = { timeout: 120_000 }
/** What `startDaemon` keeps of the daemon's output. */
const outputKept = 65_536

const skip = missing("the secret exposure suite", privatePodmanMissing([busyboxV1]))

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe.skipIf(skip !== undefined)("secrets never leak (real podman, private store)", () => {
  let podman: PrivatePodman | undefined
  let daemon: DaemonProcess | undefined
  let appsDir = ""
  let stateDir = ""
  let secret = ""

  /** The secret as it appears in clear, and inside the HTTP Basic credentials nginx would send. */
  const needles = () => [secret, Buffer.from(`archipelago:${secret}`).toString("base64")]

  /** Fails naming `what` (never printing the value) when the secret occurs in `text`. */
  const clean = (what: string, text: string) => {
    assert.isAbove(text.length, 0, `${what} is empty: nothing was searched`)
    for (const [k, needle] of needles().entries())
      assert.isFalse(
        text.includes(needle),
        `${what} contains the ${secretName} value${k === 0 ? "" : " (base64 of user:password)"}`
      )
  }

  const archy = (args: ReadonlyArray<string>): Promise<Ran> =>
    run(join(root, "bin/archy"), args, { cwd: root, timeoutMs: 110_000 })

  const nodeArgs = () => [
    "--apps",
    appsDir,
    "--state-dir",
    stateDir,
    "--socket",
    podman!.socketPath,
    "--port",
    String(daemon!.port)
  ]

  const allRunning = async (timeoutMs: number): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const r = await podman!.cliAsync(["ps", "--format", "{{.Names}}"])
      const up = new Set(r.stdout.split("\n").map((s) => s.trim()))
      if (fixtureContainers.every((n) => up.has(n))) return true
      await sleep(250)
    }
    return false
  }

  const log = () => `\n--- daemon output (tail) ---\n${daemon?.output().slice(-4_000) ?? ""}`

  beforeAll(async () => {
    podman = makePrivatePodman({ prefix: "archy-secrets-it-" })
    podman.copyImages([busyboxV1])
    podman.watchNetwork("archipelago")
    await podman.startService()
    appsDir = join(podman.dir, "apps")
    await copyCatalog(fixtureAppsDir, appsDir)
    stateDir = join(podman.dir, "state")
    mkdirSync(stateDir)
    daemon = await startDaemon({
      appsDir,
      stateDir,
      socketPath: podman.socketPath,
      port: await freePort(),
      interval: 30
    })
    assert.isTrue(await allRunning(60_000), `the fixture containers were not all running within 60 s${log()}`)
    secret = readFileSync(join(stateDir, "secrets", secretName), "utf8").trim()
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/)
  }, 120_000)

  afterAll(async () => {
    if (daemon !== undefined) {
      daemon.kill()
      await daemon.exit
    }
    const problems = (await podman?.dispose()) ?? []
    if (problems.length > 0) console.warn(`secrets suite cleanup:\n  ${problems.join("\n  ")}`)
  }, 120_000)

  it(
    "the secret reached its consumers: bitcoin.conf's rpcauth and lnd's mounted secret file",
    slow,
    async () => {
      // What the searches below could find is really this value (a leak test of the wrong value
      // would pass vacuously).
      const lndConf = readFileSync(join(stateDir, "apps/fx-lnd/data/lnd.conf"), "utf8")
      assert.include(lndConf, secret)
      const mounted = await podman!.cliAsync(["exec", "archy-fx-lnd", "cat", `/run/secrets/${secretName}`])
      assert.strictEqual(mounted.status, 0, mounted.stderr)
      assert.strictEqual(mounted.stdout.trim(), secret)
      const bitcoinConf = readFileSync(join(stateDir, "apps/fx-bitcoind/data/bitcoin.conf"), "utf8")
      assert.match(bitcoinConf, /^rpcauth=archipelago:[0-9a-f]{32}\$[0-9a-f]{64}$/m)
      clean("bitcoin.conf", bitcoinConf)
    }
  )

  it("podman inspect and podman ps of every container hold no secret value", slow, async () => {
    const ids = (await podman!.cliAsync(["ps", "-aq"])).stdout.split("\n").filter((s) => s.trim() !== "")
    assert.isAtLeast(ids.length, fixtureContainers.length)
    const inspected = await podman!.cliAsync(["container", "inspect", ...ids])
    assert.strictEqual(inspected.status, 0, inspected.stderr)
    const parsed = JSON.parse(inspected.stdout) as ReadonlyArray<{
      Name: string
      Config: { Env: Array<string> }
    }>
    assert.sameMembers(
      parsed.map((c) => c.Name),
      [...fixtureContainers]
    )
    // The searched text really is each container's full configuration.
    assert.isTrue(parsed.every((c) => c.Config.Env.length > 0))
    clean("podman container inspect", inspected.stdout)
    const ps = await podman!.cliAsync(["ps", "-a", "--no-trunc", "--format", "json"])
    assert.strictEqual(ps.status, 0, ps.stderr)
    clean("podman ps -a --format json", ps.stdout)
  })

  it(
    "status --json, plan --json (direct and through the daemon) and the API hold no secret value",
    slow,
    async () => {
      const outputs: Array<[string, Ran]> = [
        ["status --json", await archy(["status", "--json", ...nodeArgs()])],
        ["status --json --direct", await archy(["status", "--json", "--direct", ...nodeArgs()])],
        ["plan --json --direct", await archy(["plan", "--json", "--direct", ...nodeArgs()])],
        ["plan --json", await archy(["plan", "--json", ...nodeArgs()])],
        [
          "plan --json --fresh --direct",
          await archy(["plan", "--json", "--fresh", "--direct", ...nodeArgs()])
        ]
      ]
      for (const [what, r] of outputs) {
        assert.strictEqual(r.code, 0, `archy ${what}: ${r.stderr}`)
        clean(`archy ${what} stdout`, r.stdout)
        if (r.stderr !== "") clean(`archy ${what} stderr`, r.stderr)
      }
      const status = JSON.parse(outputs[0]![1].stdout) as {
        apps: ReadonlyArray<{ containers: ReadonlyArray<{ name: string; state: string }> }>
      }
      assert.sameMembers(
        status.apps.flatMap((a) => a.containers.map((c) => c.name)),
        [...fixtureContainers]
      )
      // A fresh node's plan writes both configs that hold or derive from the secret.
      const fresh = JSON.parse(outputs[4]![1].stdout) as {
        actions: ReadonlyArray<{ kind: string; target: string }>
      }
      assert.includeMembers(
        fresh.actions.filter((a) => a.kind === "write-file").map((a) => a.target.split("/").pop()),
        ["bitcoin.conf", "lnd.conf"]
      )

      for (const method of ["package.status", "package.list", "system.plan", "system.health"]) {
        const r = await daemon!.rpc(method)
        assert.strictEqual(r.status, 200, r.text)
        clean(`the API's ${method} answer`, r.text)
      }
    }
  )

  it("bin/archy doctor passes on the healthy node (exit 0)", slow, async () => {
    const r = await archy(["doctor", "--socket", podman!.socketPath, "--state-dir", stateDir])
    assert.strictEqual(r.code, 0, `archy doctor:\n${r.stdout}${r.stderr}`)
    assert.notMatch(r.stdout, /FAIL/)
    assert.match(r.stdout, /secrets/)
    clean("archy doctor output", r.stdout + r.stderr)
  })

  it("the daemon's whole output holds no secret value (SIGTERM: exit 0)", slow, async () => {
    const d = daemon!
    process.kill(d.pid, "SIGTERM")
    const exit = await Promise.race([d.exit, sleep(30_000).then(() => undefined)])
    assert.deepStrictEqual(exit, { code: 0, signal: null }, log())
    const output = d.output()
    assert.isBelow(output.length, outputKept, "the daemon's output was longer than what was kept of it")
    // It did log: one line per action of the boot pass at least.
    assert.match(output, /archy-fx-bitcoind/)
    clean("the daemon's output", output)
  })

  it(
    "doctor flags a container carrying the secret in its env, naming it and the secret, not the value",
    slow,
    async () => {
      assert.isFalse(daemon!.running(), "the daemon would remove the container below at once")
      const created = await podman!.cliAsync([
        "run",
        "-d",
        "--name",
        leaky,
        "--label",
        "io.archipelago.app=fx-worker",
        "--label",
        `io.archipelago.container=${leaky}`,
        "-e",
        `DAEMON_URL=http://archipelago:${secret}@host.archipelago:8332/`,
        "--add-host",
        "host.archipelago:10.89.0.1",
        busyboxV1,
        "/bin/sleep",
        "3600"
      ])
      assert.strictEqual(created.status, 0, created.stderr)
      // The leak is real: podman inspect shows the value.
      const shown = await podman!.cliAsync([
        "container",
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        leaky
      ])
      assert.include(shown.stdout, secret)

      const text = await archy(["doctor", "--socket", podman!.socketPath, "--state-dir", stateDir])
      const all = text.stdout + text.stderr
      assert.notStrictEqual(text.code, 0, `archy doctor passed with ${leaky} leaking the secret:\n${all}`)
      assert.include(all, leaky)
      assert.include(all, secretName)
      clean("archy doctor output", all)
      const failing = text.stdout.split("\n").filter((l) => l.startsWith("FAIL"))
      assert.lengthOf(failing, 1, text.stdout)
      assert.include(failing[0]!, leaky)
      assert.include(failing[0]!, secretName)

      const json = await archy(["doctor", "--json", "--socket", podman!.socketPath, "--state-dir", stateDir])
      assert.notStrictEqual(json.code, 0, json.stdout)
      clean("archy doctor --json output", json.stdout + json.stderr)
      const { findings } = JSON.parse(json.stdout) as {
        findings: ReadonlyArray<{ check: string; ok: boolean; message: string }>
      }
      assert.deepStrictEqual(
        findings.filter((f) => !f.ok).map((f) => f.check),
        ["secrets"]
      )
      const finding = findings.find((f) => !f.ok)!
      assert.include(finding.message, leaky)
      assert.include(finding.message, secretName)
      assert.include(finding.message, "env")
    }
  )
})
