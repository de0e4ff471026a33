/**
 * First boot on real podman (LibpodRuntime, a private store): an empty state dir, one pass, and
 * the node's directories exist with their modes and owners before the first container. The
 * fixture app fx-owner runs as uid 1234 and writes into its data dir and its 0700 hidden-service
 * dir: its writes succeed only because of the owner the pass set (the same write into a root-owned
 * dir fails, checked here too). A second pass changes nothing; drifted modes and owners are
 * repaired by one pass, directory by directory, without touching what the container wrote.
 *
 * Then the same first boot for a rootless podman (a throwaway service user, as in
 * rootless.integration.test.ts): the node's dirs become the user's, and uid 1234's dirs are owned
 * by subuid_start + 1233 from the user's /etc/subuid range, which is who the container really is.
 */
import { spawnSync } from "node:child_process"
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Catalog, loadCatalog } from "@archy/core/Catalog"
import * as Desired from "@archy/core/Desired"
import { AdoptionStore } from "@archy/engine/AdoptionStore"
import { HealthBook } from "@archy/engine/Health"
import { podmanUidOf, readIdMapping } from "@archy/engine/HostIds"
import { type ActionReport, reconcileOnce, reconcileUntilSettled } from "@archy/engine/Reconciler"
import { SecretStore } from "@archy/engine/SecretStore"
import * as LibpodRuntime from "@archy/podman/LibpodRuntime"
import type { PodmanRuntime } from "@archy/podman/PodmanRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { busyboxV1 } from "../images/images.ts"
import { executable, missing, uniqueSuffix } from "./support/Prerequisites.ts"
import { makePrivatePodman, type PrivatePodman, privatePodmanMissing } from "./support/PrivatePodman.ts"
import { createRootlessUser, type RootlessUser } from "./support/RootlessUser.ts"

const appsDir = new URL("../fixtures/firstboot-apps/", import.meta.url).pathname
const container = "archy-fx-owner"
const slow = { timeout: 120_000 }
const skip = missing("the first-boot suite", privatePodmanMissing([busyboxV1]))

const summary = (reports: ReadonlyArray<ActionReport>) =>
  reports.map((r) => `${r.action._tag} ${r.action.target} ${r.outcome._tag}`)
const dirActions = (reports: ReadonlyArray<ActionReport>) =>
  reports.filter((r) => r.action._tag === "EnsureDirectory")

const stat = (p: string) => {
  const s = statSync(p)
  return `${(s.mode & 0o7777).toString(8).padStart(4, "0")} ${s.uid}:${s.gid}`
}

describe.skipIf(skip !== undefined)("first boot on real podman (private store)", () => {
  let podman: PrivatePodman | undefined
  let runtime:
    | ManagedRuntime.ManagedRuntime<
        PodmanRuntime | SecretStore | AdoptionStore | HealthBook | NodeServices.NodeServices,
        never
      >
    | undefined
  let stateDir = ""
  let node: Desired.NodeConfig
  const at = (rel: string) => join(stateDir, rel)

  const input = async () => {
    const catalog: Catalog = await runtime!.runPromise(loadCatalog(appsDir))
    assert.deepStrictEqual(catalog.issues, [])
    return { catalog, selection: Desired.defaultSelection(catalog), node }
  }
  const pass = async () => runtime!.runPromise(reconcileOnce(await input()))
  const state = () =>
    podman!.cliOk(["container", "inspect", "--format", "{{.State.Status}}", container]).trim()

  beforeAll(async () => {
    podman = makePrivatePodman({ prefix: "archy-fb-it-" })
    podman.copyImages([busyboxV1])
    podman.watchNetwork("archipelago")
    await podman.startService()
    // A state dir that does not exist yet: first boot makes it.
    stateDir = join(podman.dir, "state")
    node = { ...Desired.defaultNodeConfig, dataRoot: at("apps"), secretsDir: at("secrets") }
    runtime = ManagedRuntime.make(
      Layer.mergeAll(
        LibpodRuntime.layer({ socketPath: podman.socketPath }),
        SecretStore.layer(node.secretsDir),
        AdoptionStore.layer(at("adopted.json")),
        HealthBook.layer
      ).pipe(Layer.provideMerge(NodeServices.layer))
    )
  }, 120_000)

  afterAll(async () => {
    await runtime?.dispose()
    const problems = (await podman?.dispose()) ?? []
    if (problems.length > 0) console.warn(`first-boot suite cleanup:\n  ${problems.join("\n  ")}`)
  }, 120_000)

  it(
    "one pass makes every directory, with its mode and owner, before the container that writes into it",
    slow,
    async () => {
      const settled = await runtime!.runPromise(reconcileUntilSettled(await input(), { pauseMs: 200 }))
      const reports = settled.reports
      assert.deepStrictEqual(
        reports
          .filter((r) => r.outcome._tag !== "Done")
          .map((r) => `${r.action.target}: ${JSON.stringify(r.outcome)}`),
        []
      )
      assert.deepStrictEqual(
        dirActions(reports).map((r) => r.action.cause),
        [
          `${stateDir} does not exist (the node's state dir; want 0755, owner 0:0)`,
          "apps does not exist (the apps' data roots; want 0755, owner 0:0)",
          "secrets does not exist (the node's canonical secrets; want 0700, owner 0:0)",
          "apps/fx-owner does not exist (the data root of app fx-owner; want 0755, owner 0:0)",
          "apps/fx-owner/data does not exist (data of container archy-fx-owner; want 0755, owner 1234:1234)",
          "apps/fx-owner/data/hidden_service does not exist (declared by app fx-owner for container archy-fx-owner; want 0700, owner 1234:1234)"
        ]
      )
      const order = summary(reports)
      assert.isBelow(
        order.indexOf(`EnsureDirectory dir:${at("apps/fx-owner/data/hidden_service")} Done`),
        order.indexOf(`Create container:${container} Done`)
      )
      assert.strictEqual(stat(stateDir), "0755 0:0")
      assert.strictEqual(stat(at("secrets")), "0700 0:0")
      assert.strictEqual(stat(at("apps/fx-owner/data")), "0755 1234:1234")
      assert.strictEqual(stat(at("apps/fx-owner/data/hidden_service")), "0700 1234:1234")

      // The container, as uid 1234, wrote both files: they are its own on the host.
      const deadline = Date.now() + 30_000
      while (state() !== "running" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
      assert.strictEqual(state(), "running", podman!.cli(["logs", container]).stderr)
      const key = at("apps/fx-owner/data/hidden_service/hs_ed25519_secret_key")
      for (const _ of Array.from({ length: 50 })) {
        try {
          statSync(key)
          break
        } catch {
          await new Promise((r) => setTimeout(r, 100))
        }
      }
      assert.strictEqual(readFileSync(key, "utf8"), "key\n")
      assert.strictEqual(stat(key).split(" ")[1], "1234:1234")
      assert.strictEqual(readFileSync(at("apps/fx-owner/data/written"), "utf8"), "data\n")
    }
  )

  it("the same write into a directory root owns fails: the owner is what makes it work", slow, () => {
    const rootOwned = mkdtempSync(join(podman!.dir, "rootowned-"))
    chmodSync(rootOwned, 0o755)
    const r = podman!.cli([
      "run",
      "--rm",
      "--pull=never",
      "--network=none",
      "--user",
      "1234:1234",
      "-v",
      `${rootOwned}:/data`,
      busyboxV1,
      "/bin/sh",
      "-c",
      "echo data > /data/written"
    ])
    assert.notStrictEqual(r.status, 0, "uid 1234 could write into a root-owned 0755 dir")
    assert.match(r.stderr + r.stdout, /Permission denied/)
  })

  it("a second pass changes nothing", slow, async () => {
    assert.deepStrictEqual(summary(await pass()), [])
  })

  it("drifted modes and owners: one pass repairs each directory, never what is inside", slow, async () => {
    const data = at("apps/fx-owner/data")
    const hs = join(data, "hidden_service")
    chmodSync(hs, 0o755)
    chownSync(data, 0, 0)
    chmodSync(at("secrets"), 0o755)
    mkdirSync(join(data, "user-made"), { mode: 0o777 })
    chmodSync(join(data, "user-made"), 0o777)
    const inside = [join(data, "written"), join(hs, "hs_ed25519_secret_key"), join(data, "user-made")]
    const before = inside.map(stat)

    const reports = await pass()
    assert.deepStrictEqual(summary(reports), [
      `EnsureDirectory dir:${at("secrets")} Done`,
      `EnsureDirectory dir:${data} Done`,
      `EnsureDirectory dir:${hs} Done`
    ])
    assert.deepStrictEqual(
      reports.map((r) => r.action.cause),
      [
        "secrets is 0755, want 0700",
        "apps/fx-owner/data is owned by 0:0, want owned by 1234:1234",
        "apps/fx-owner/data/hidden_service is 0755, want 0700"
      ]
    )
    assert.strictEqual(stat(at("secrets")), "0700 0:0")
    assert.strictEqual(stat(data), "0755 1234:1234")
    assert.strictEqual(stat(hs), "0700 1234:1234")
    assert.deepStrictEqual(inside.map(stat), before, "the contents kept their modes and owners")
    assert.strictEqual(state(), "running")
    assert.deepStrictEqual(summary(await pass()), [], "and the pass after it changes nothing")
  })
})

// Rootless: the same first boot for a podman run by a service user, through its subuid range.
const tunMissing = (): string | undefined => {
  try {
    return (statSync("/dev/net/tun").mode & 0o006) === 0o006
      ? undefined
      : "/dev/net/tun is not open to users (scripts/install-test-deps.sh)"
  } catch {
    return "/dev/net/tun is missing: rootless networking (slirp4netns) needs it"
  }
}
const skipRootless =
  skip ??
  missing(
    "the rootless first-boot test",
    process.getuid?.() === 0 ? undefined : "it must run as root (it creates a user)",
    executable("/usr/sbin/useradd", "the passwd package"),
    executable("/usr/bin/newuidmap", "uidmap (scripts/install-test-deps.sh)"),
    executable("/usr/bin/slirp4netns", "slirp4netns (scripts/install-test-deps.sh)"),
    tunMissing()
  )

describe.skipIf(skipRootless !== undefined)(
  "first boot for rootless podman (a throwaway service user)",
  () => {
    let user: RootlessUser | undefined
    let runtime:
      | ManagedRuntime.ManagedRuntime<
          PodmanRuntime | SecretStore | AdoptionStore | HealthBook | NodeServices.NodeServices,
          never
        >
      | undefined
    let parent = ""
    let node: Desired.NodeConfig
    const at = (rel: string) => join(parent, "state", rel)
    const input = async () => {
      const catalog: Catalog = await runtime!.runPromise(loadCatalog(appsDir))
      return { catalog, selection: Desired.defaultSelection(catalog), node }
    }

    beforeAll(async () => {
      user = await createRootlessUser(`archy-fb-${uniqueSuffix()}`)
      await user.startService()
      const saved = spawnSync("podman", ["save", busyboxV1], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 })
      if (saved.status !== 0) throw new Error(`podman save ${busyboxV1}: ${saved.stderr?.toString()}`)
      const loaded = user.as(["podman", "load"], { input: saved.stdout })
      if (loaded.status !== 0) throw new Error(`podman load as ${user.name}: ${loaded.stderr}`)
      // The service user must reach the state dir to mount from it.
      parent = mkdtempSync(join(tmpdir(), "archy-fb-rl-"))
      chmodSync(parent, 0o755)
      node = {
        ...Desired.defaultNodeConfig,
        dataRoot: at("apps"),
        secretsDir: at("secrets"),
        // The host's own archipelago network holds 10.89.0.0/24; the user's needs another.
        network: { ...Desired.defaultNodeConfig.network, subnet: "10.89.231.0/24", gateway: "10.89.231.1" },
        ids: readIdMapping(podmanUidOf(user.socketPath))
      }
      runtime = ManagedRuntime.make(
        Layer.mergeAll(
          LibpodRuntime.layer({ socketPath: user.socketPath }),
          SecretStore.layer(node.secretsDir),
          AdoptionStore.layer(at("adopted.json")),
          HealthBook.layer
        ).pipe(Layer.provideMerge(NodeServices.layer))
      )
    }, 180_000)

    afterAll(async () => {
      await runtime?.dispose()
      const problems = (await user?.remove()) ?? []
      if (parent !== "") rmSync(parent, { recursive: true, force: true })
      assert.deepStrictEqual(problems, [], "the service user is torn down completely")
    }, 120_000)

    it("owners map through the user's subuid range, and the container writes as its uid", slow, async () => {
      const u = user!
      const ids = node.ids
      assert.strictEqual(ids?._tag, "Rootless")
      const sub = ids?._tag === "Rootless" ? ids.subuid : undefined
      const subg = ids?._tag === "Rootless" ? ids.subgid : undefined
      assert.isDefined(sub, "useradd gave the user a /etc/subuid range")
      const host = `${sub!.start + 1233}:${subg!.start + 1233}`

      const settled = await runtime!.runPromise(reconcileUntilSettled(await input(), { pauseMs: 200 }))
      assert.deepStrictEqual(
        settled.reports
          .filter((r) => r.outcome._tag !== "Done")
          .map((r) => `${r.action.target}: ${JSON.stringify(r.outcome)}`),
        []
      )
      assert.strictEqual(stat(at(".")), `0755 ${u.uid}:${u.gid}`, "the node's dirs are the service user's")
      assert.strictEqual(stat(at("secrets")), `0700 ${u.uid}:${u.gid}`)
      assert.strictEqual(stat(at("apps/fx-owner")), `0755 ${u.uid}:${u.gid}`)
      assert.strictEqual(stat(at("apps/fx-owner/data")), `0755 ${host}`)
      assert.strictEqual(stat(at("apps/fx-owner/data/hidden_service")), `0700 ${host}`)

      // Container uid 1234 is host uid subuid_start + 1233: it could write, and the files are that uid's.
      const key = at("apps/fx-owner/data/hidden_service/hs_ed25519_secret_key")
      for (let i = 0; i < 100; i++) {
        try {
          statSync(key)
          break
        } catch {
          await new Promise((r) => setTimeout(r, 100))
        }
      }
      const ps = u.as(["podman", "ps", "-a", "--format", "{{.Names}} {{.Status}}"])
      assert.strictEqual(
        readFileSync(key, "utf8"),
        "key\n",
        ps.stdout + u.as(["podman", "logs", container]).stderr
      )
      assert.strictEqual(stat(key).split(" ")[1], host)
      assert.match(ps.stdout, new RegExp(`${container} Up`))

      assert.deepStrictEqual(summary(await runtime!.runPromise(reconcileOnce(await input()))), [])
    })
  }
)
