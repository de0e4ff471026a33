/**
 * The operator's view, end to end: `bin/archy apply` brings the fixture catalog to running on
 * real podman, a second `apply` has nothing to do, `status --json` lists every container
 * running, and `plan` against the live node is empty. Run through the podman CLI adapter (no
 * socket) and through a podman API socket.
 *
 * Both on a private podman store (the CLI adapter's podman is pointed at it by
 * `CONTAINERS_STORAGE_CONF`, the socket is its service), with the catalog's host ports moved to free
 * ones: an apply removes every container with our labels whose app its catalog does not name.
 */
import { spawnSync } from "node:child_process"
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { fixtureAppsDir, fixtureContainers } from "../fixtures/fixtures.ts"
import { busyboxV1 } from "../images/images.ts"
import { missing } from "./support/Prerequisites.ts"
import {
  copyCatalog,
  makePrivatePodman,
  type PrivatePodman,
  privatePodmanMissing
} from "./support/PrivatePodman.ts"

const root = new URL("../../", import.meta.url).pathname
const slow = { timeout: 180_000 }

const archy = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const r = spawnSync(join(root, "bin/archy"), args, {
    cwd: root,
    encoding: "utf8",
    timeout: 170_000,
    env: { ...process.env, ...env }
  })
  if (r.error !== undefined) throw r.error
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const skip = missing("the bin/archy suite", privatePodmanMissing([busyboxV1]))

describe.skipIf(skip !== undefined)("bin/archy against real podman", () => {
  let podman: PrivatePodman | undefined
  /** For the podman CLI that bin/archy's CLI adapter runs: this suite's store. */
  let storageEnv: Record<string, string> = {}
  let stateDir = ""
  let appsDir = ""
  const common = () => ["--apps", appsDir, "--state-dir", stateDir]
  const podmanCli = (args: ReadonlyArray<string>) => podman!.cli(args)

  beforeAll(async () => {
    // A fresh store: the UI's image is built by the pass itself.
    podman = makePrivatePodman({ prefix: "archy-cli-it-" })
    podman.copyImages([busyboxV1])
    podman.watchNetwork("archipelago")
    storageEnv = { CONTAINERS_STORAGE_CONF: podman.storageConf() }
    appsDir = join(podman.dir, "apps")
    await copyCatalog(fixtureAppsDir, appsDir)
    stateDir = join(podman.dir, "state")
    mkdirSync(stateDir)
    await podman.startService()
  }, 120_000)

  afterAll(async () => {
    const problems = (await podman?.dispose()) ?? []
    assert.deepStrictEqual(problems, [], "the private podman was not cleaned up")
  }, 120_000)

  it("apply brings the catalog to running, action by action, with causes", slow, () => {
    // No socket given and none at podman's system path here: the CLI adapter.
    const run = archy(["apply", ...common()], { ...storageEnv, ARCHY_PODMAN_SOCKET: "" })
    assert.strictEqual(run.status, 0, `${run.stdout}\n${run.stderr}`)
    assert.match(
      run.stdout,
      /^done +ensure-secret secret:bitcoin-rpc-password: secret bitcoin-rpc-password does not exist yet/m
    )
    assert.match(
      run.stdout,
      /^done +create container:archy-fx-bitcoind: container archy-fx-bitcoind does not exist/m
    )
    assert.match(run.stdout, /^done +build-image image:localhost\/archipelago\/archy-fx-ui:1\.0\.0/m)
    assert.match(
      run.stdout,
      /\d+ action\(s\) in \d+ pass\(es\): \d+ done, 0 failed, 0 skipped, 0 still waiting$/m
    )
    for (const name of fixtureContainers) {
      const state = podmanCli(["inspect", "--format", "{{.State.Status}}", name])
      assert.strictEqual(state.stdout.trim(), "running", name)
    }
  })

  it("apply again reports no actions, over the API socket too", slow, () => {
    const viaCli = archy(["apply", ...common()], { ...storageEnv, ARCHY_PODMAN_SOCKET: "" })
    assert.strictEqual(viaCli.status, 0, viaCli.stderr)
    assert.strictEqual(viaCli.stdout.trim(), "nothing to do: the node matches its manifests")
    const viaSocket = archy(["apply", ...common(), "--socket", podman!.socketPath])
    assert.strictEqual(viaSocket.status, 0, viaSocket.stderr)
    assert.strictEqual(viaSocket.stdout.trim(), "nothing to do: the node matches its manifests")
  })

  it("plan against the live node is empty and changes nothing", slow, () => {
    const run = archy(["plan", ...common(), "--socket", podman!.socketPath, "--json"])
    assert.strictEqual(run.status, 0, run.stderr)
    assert.deepStrictEqual(JSON.parse(run.stdout), { actions: [] })
  })

  it("status --json lists every app's containers running", slow, () => {
    const run = archy(["status", ...common(), "--socket", podman!.socketPath, "--json"])
    assert.strictEqual(run.status, 0, run.stderr)
    const status = JSON.parse(run.stdout) as {
      apps: ReadonlyArray<{
        id: string
        containers: ReadonlyArray<{ name: string; state: string; current?: boolean }>
      }>
    }
    assert.deepStrictEqual(
      status.apps.map((a) => a.id),
      ["fx-bitcoind", "fx-lnd", "fx-ui", "fx-worker"]
    )
    const containers = status.apps.flatMap((a) => a.containers)
    assert.sameMembers(
      containers.map((c) => c.name),
      [...fixtureContainers]
    )
    for (const c of containers) {
      assert.strictEqual(c.state, "running", c.name)
      assert.strictEqual(c.current, true, c.name)
    }
  })

  it("status shows a stopped container, and the next apply starts it", slow, () => {
    podmanCli(["stop", "-t", "0", "archy-fx-worker"])
    const table = archy(["status", ...common()], { ...storageEnv, ARCHY_PODMAN_SOCKET: "" })
    assert.strictEqual(table.status, 0, table.stderr)
    assert.match(table.stdout, /^fx-worker +archy-fx-worker +exited +exit code \d+$/m)
    const run = archy(["apply", ...common()], { ...storageEnv, ARCHY_PODMAN_SOCKET: "" })
    assert.strictEqual(run.status, 0, run.stderr)
    assert.match(
      run.stdout,
      /^done +start container:archy-fx-worker: container archy-fx-worker is exited \(exit code \d+\)/m
    )
  })
})
