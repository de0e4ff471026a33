/**
 * Rootless podman smoke test: a throwaway user with their own `podman system service` on
 * `/run/user/UID/podman/podman.sock`. The socket is discovered the way `archy` does for a
 * non-root user, the libpod adapter observes the user's (empty) store through it, then creates,
 * starts, stops and removes a container there: it runs in the user's store only, as the user.
 *
 * Needs root (it creates the user), `uidmap` (newuidmap/newgidmap for the subordinate ranges),
 * `slirp4netns` (rootless networking) and a `/dev/net/tun` other users can open;
 * scripts/install-test-deps.sh provides all three.
 */
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync, statSync } from "node:fs"
import { Action } from "@archy/core/Action"
import type { DesiredContainer } from "@archy/core/Desired"
import { labels } from "@archy/core/Observed"
import * as LibpodRuntime from "@archy/podman/LibpodRuntime"
import { PodmanRuntime } from "@archy/podman/PodmanRuntime"
import { discoverSocket } from "@archy/podman/Socket"
import * as Effect from "effect/Effect"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { podmanCli, podmanMissing } from "../../packages/podman/test/support/PodmanService.ts"
import { busyboxV1 } from "../images/images.ts"
import { executable, missing, uniqueSuffix } from "./support/Prerequisites.ts"
import { createRootlessUser, type RootlessUser } from "./support/RootlessUser.ts"

const hint = "run scripts/install-test-deps.sh as root"

const tunMissing = (): string | undefined => {
  try {
    const mode = statSync("/dev/net/tun").mode & 0o777
    return (mode & 0o006) === 0o006
      ? undefined
      : `/dev/net/tun is mode ${mode.toString(8)}, so slirp4netns cannot open it as a user (${hint})`
  } catch {
    return "/dev/net/tun is missing: rootless networking (slirp4netns) needs it"
  }
}

const skip =
  podmanMissing ??
  missing(
    "the rootless podman tests",
    process.getuid?.() === 0 ? undefined : "they must run as root (they create a user)",
    executable("/usr/sbin/useradd", "the passwd package"),
    executable("/usr/sbin/runuser", "the util-linux package"),
    executable("/usr/bin/newuidmap", `uidmap; ${hint}`),
    executable("/usr/bin/newgidmap", `uidmap; ${hint}`)
  )
/** Running a container rootless also needs its network namespace: slirp4netns on /dev/net/tun. */
const skipContainer =
  skip ??
  missing(
    "the rootless container test",
    executable("/usr/bin/slirp4netns", `slirp4netns; ${hint}`),
    tunMissing()
  )

const suffix = uniqueSuffix()
const userName = `archy-rootless-${suffix}`
const container = `archy-rootless-${suffix}`
let user: RootlessUser | undefined

const theUser = (): RootlessUser => {
  if (user === undefined) throw new Error("the rootless user was not set up")
  return user
}

beforeAll(async () => {
  if (skip !== undefined) return
  if (podmanCli(["image", "exists", busyboxV1]).status !== 0) {
    throw new Error(`test image ${busyboxV1} is missing: run scripts/test-images.sh`)
  }
  user = await createRootlessUser(userName)
  await user.startService()
}, 120_000)

afterAll(async () => {
  if (user === undefined) return
  const problems = await user.remove()
  assert.deepStrictEqual(problems, [], "the rootless user is torn down completely")
  assert.isFalse(existsSync(user.runtimeDir))
  assert.isFalse(existsSync(user.home))
  assert.notStrictEqual(spawnSync("id", ["-u", user.name]).status, 0, `${user.name} is gone`)
  for (const file of ["/etc/subuid", "/etc/subgid"]) {
    assert.notInclude(readFileSync(file, "utf8"), `${user.name}:`, `${file} no longer lists ${user.name}`)
  }
}, 120_000)

const withRuntime = <A, E>(f: (runtime: PodmanRuntime["Service"]) => Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(
    Effect.gen(function* () {
      return yield* f(yield* PodmanRuntime)
    }).pipe(Effect.provide(LibpodRuntime.layer({ socketPath: theUser().socketPath })))
  )

const desired = (name: string): DesiredContainer => ({
  app: "archy-rootless",
  name,
  source: { _tag: "Registry", ref: busyboxV1 },
  spec: {
    name,
    image: busyboxV1,
    env: [],
    ports: [],
    mounts: [],
    secretMounts: [],
    networks: [],
    hostNetwork: false,
    hostPid: false,
    capAdd: [],
    hosts: [],
    stopTimeoutSeconds: 0,
    labels: { [labels.app]: "archy-rootless", [labels.container]: name }
  },
  specHash: "rootless-1",
  shouldRun: true,
  consumes: [],
  filesHash: "pending",
  waitsFor: []
})

const base = { target: `container:${container}`, cause: "rootless test" }

describe.skipIf(skip !== undefined)("rootless podman", () => {
  it("discovers the user's socket, and observes their empty store through it", async () => {
    const u = theUser()
    assert.strictEqual(u.socketPath, `/run/user/${u.uid}/podman/podman.sock`)
    assert.strictEqual(discoverSocket({ uid: u.uid, exists: existsSync }), u.socketPath)
    assert.strictEqual(statSync(u.socketPath).uid, u.uid, "the service runs as the user")

    const snapshot = await withRuntime((rt) => rt.observe)
    assert.deepStrictEqual(snapshot.containers, [])
    assert.deepStrictEqual(snapshot.images, [])
    assert.deepStrictEqual(
      snapshot.networks.map((n) => n.name),
      ["podman"],
      "only rootless podman's default network"
    )
  })

  it.skipIf(skipContainer !== undefined)(
    "creates, starts, stops and removes a container in the user's own store",
    async () => {
      const u = theUser()
      // The test image, from root's store into the user's.
      const saved = spawnSync("podman", ["save", busyboxV1], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 })
      assert.strictEqual(saved.status, 0, saved.stderr?.toString())
      const loaded = u.as(["podman", "load"], { input: saved.stdout })
      assert.strictEqual(loaded.status, 0, loaded.stderr)

      const find = (rt: PodmanRuntime["Service"]) =>
        Effect.map(rt.observe, (s) => s.containers.find((c) => c.name === container))
      const running = await withRuntime((rt) =>
        Effect.gen(function* () {
          yield* rt.apply(Action.Create({ ...base, container: desired(container) }))
          yield* rt.apply(Action.Start({ ...base, name: container }))
          return yield* find(rt)
        })
      )
      assert.strictEqual(running?.state, "running")
      assert.strictEqual(running?.image, busyboxV1)
      assert.strictEqual(running?.labels[labels.app], "archy-rootless")

      // It is the user's: root's podman does not know it, and its processes run as the user's uid.
      assert.notStrictEqual(podmanCli(["container", "exists", container]).status, 0)
      const pid = u.as(["podman", "inspect", "--format", "{{.State.Pid}}", container])
      assert.strictEqual(pid.status, 0, pid.stderr)
      const uidLine = readFileSync(`/proc/${pid.stdout.trim()}/status`, "utf8")
        .split("\n")
        .find((l) => l.startsWith("Uid:"))
      assert.strictEqual(Number(uidLine?.split(/\s+/)[1]), u.uid, "container root is the user on the host")

      const after = await withRuntime((rt) =>
        Effect.gen(function* () {
          yield* rt.apply(Action.Stop({ ...base, name: container, timeoutSeconds: 0 }))
          const stopped = yield* find(rt)
          yield* rt.apply(
            Action.Remove({ ...base, name: container, containerId: stopped?.id ?? "", timeoutSeconds: 0 })
          )
          return { stopped, left: (yield* rt.observe).containers }
        })
      )
      assert.strictEqual(after.stopped?.state, "exited")
      assert.deepStrictEqual(after.left, [])
    }
  )
})
