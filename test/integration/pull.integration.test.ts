/**
 * Pulls through registry mirrors against a real registry on 127.0.0.1, for both adapters (libpod
 * over a private podman service, and the podman CLI), then end to end through `bin/archy apply`.
 *
 * The upstream ref is `docker.io/archy-test/pulled:1`: docker.io is unreachable here, so the image
 * can only come from a mirror. The registry holds `localhost/archy-test/busybox:2` under the
 * mirror's name, so a successful pull gives busybox:2's image id a new name.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Action } from "@archy/core/Action"
import * as CliRuntime from "@archy/podman/CliRuntime"
import * as LibpodRuntime from "@archy/podman/LibpodRuntime"
import type { RegistryMirror } from "@archy/podman/Mirrors"
import { PodmanRuntime, type RuntimeError } from "@archy/podman/PodmanRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { busyboxV2 } from "../images/images.ts"
import { missing, run, uniqueSuffix } from "./support/Prerequisites.ts"
import {
  makePrivatePodman,
  type PrivatePodman,
  podman,
  privatePodmanMissing
} from "./support/PrivatePodman.ts"
import { type Registry, registryBinaryMissing, startRegistry } from "./support/Registry.ts"

const skip = missing("the mirror pull tests", privatePodmanMissing([busyboxV2]), registryBinaryMissing())

const repoRoot = fileURLToPath(new URL("../../", import.meta.url))
const upstream = "docker.io/archy-test/pulled:1"
const downMirror: RegistryMirror = { host: "127.0.0.1:1", insecure: true }
const suffix = uniqueSuffix()

let workDir = ""
let registry: Registry | undefined
/** The pulls land in a store of this run's own: names and images of other runs stay apart. */
let service: PrivatePodman | undefined
const podmanCli = (args: ReadonlyArray<string>, timeoutMs?: number) => {
  if (service === undefined) throw new Error("the private podman was not made")
  return service.cli(args, timeoutMs)
}
/** busybox:2's image id: what every successful pull below must land under the upstream name. */
let busyboxId = ""

const address = (): string => {
  if (registry === undefined) throw new Error("the test registry did not start")
  return registry.address
}
const mirrorRef = () => `${address()}/archy-test/pulled:1`

/** The image id `ref` names in the local store, or `undefined`. */
const imageId = (ref: string): string | undefined => {
  const r = podmanCli(["image", "inspect", "--format", "{{.Id}}", ref])
  return r.status === 0 ? r.stdout.trim() : undefined
}

/** Drops the name `ref` (only the name when the image has others, as the pulled one does). */
const forget = (ref: string): void => {
  podmanCli(["rmi", ref])
}

beforeAll(async () => {
  if (skip !== undefined) return
  service = makePrivatePodman({ prefix: "archy-pull-it-" })
  service.watchNetwork("archipelago")
  workDir = join(service.dir, "work")
  mkdirSync(workDir)
  registry = await startRegistry(workDir)
  // Pushed from the shared store (read only there); the private one starts without busybox:2.
  busyboxId = podman(["image", "inspect", "--format", "{{.Id}}", busyboxV2]).stdout.trim()
  const push = podman(["push", "--quiet", "--tls-verify=false", busyboxV2, mirrorRef()], 120_000)
  if (push.status !== 0) throw new Error(`podman push to ${address()} failed: ${push.stderr.trim()}`)
  await service.startService()
}, 120_000)

afterAll(async () => {
  if (skip !== undefined) return
  registry?.stop()
  const problems = (await service?.dispose()) ?? []
  assert.deepStrictEqual(problems, [], "the private podman was not cleaned up")
}, 120_000)

type Adapter = "libpod" | "cli"

const layerOf = (adapter: Adapter, mirrors: ReadonlyArray<RegistryMirror>): Layer.Layer<PodmanRuntime> => {
  if (adapter === "cli")
    return CliRuntime.layer({ mirrors, globalArgs: service?.store ?? [] }).pipe(
      Layer.provide(NodeServices.layer)
    )
  if (service === undefined) throw new Error("the podman service did not start")
  return LibpodRuntime.layer({ socketPath: service.socketPath, mirrors })
}

const withRuntime = <A, E>(
  adapter: Adapter,
  mirrors: ReadonlyArray<RegistryMirror>,
  f: (runtime: PodmanRuntime["Service"]) => Effect.Effect<A, E>
): Promise<A> =>
  Effect.runPromise(
    Effect.gen(function* () {
      return yield* f(yield* PodmanRuntime)
    }).pipe(Effect.provide(layerOf(adapter, mirrors)))
  )

const pullImage = (ref: string) =>
  Action.PullImage({ target: `image:${ref}`, cause: "test", source: { _tag: "Registry", ref } })

const indexOf = (lines: ReadonlyArray<string>, text: string) => lines.findIndex((l) => l.includes(text))

describe.skipIf(skip !== undefined).each<Adapter>(["libpod", "cli"])(
  "PullImage through mirrors (%s)",
  (adapter) => {
    it("skips a down mirror, pulls from the next and names the image by its upstream ref", async () => {
      forget(upstream)
      forget(mirrorRef())
      assert.isUndefined(imageId(upstream), `${upstream} is still present before the pull`)
      const lines: Array<string> = []
      const snapshot = await withRuntime(adapter, [downMirror, { host: address(), insecure: true }], (rt) =>
        rt
          .apply(pullImage(upstream), (line) => Effect.sync(() => lines.push(line)))
          .pipe(Effect.andThen(rt.observe))
      )
      const shown = lines.join("\n")

      assert.strictEqual(imageId(upstream), busyboxId, "the upstream name is busybox:2's image, pulled")
      assert.isUndefined(imageId(mirrorRef()), "the mirror's name is removed")
      assert.isUndefined(imageId(`${downMirror.host}/archy-test/pulled:1`))
      assert.isAbove(lines.length, 0, "progress lines were delivered")
      const down = indexOf(lines, `${downMirror.host}/archy-test/pulled:1`)
      const up = indexOf(lines, `Trying to pull ${mirrorRef()}`)
      assert.isAtLeast(down, 0, `the down mirror was tried:\n${shown}`)
      assert.isAbove(up, down, `then the next mirror:\n${shown}`)
      assert.notInclude(shown, `Trying to pull ${upstream}`, "upstream is not tried once a mirror had it")

      // The adapter's own view after the pull agrees.
      const seen = snapshot.images.find((i) => i.names.includes(upstream))
      assert.strictEqual(seen?.id, busyboxId)
      assert.isFalse(snapshot.images.some((i) => i.names.some((n) => n.startsWith(`${address()}/`))))
    })

    it("fails with ImageMissing naming every attempt when no mirror has it and upstream is unreachable", async () => {
      const ref = `docker.io/archy-test/absent-${suffix}:1`
      const attempts = [
        `${downMirror.host}/archy-test/absent-${suffix}:1`,
        `${address()}/archy-test/absent-${suffix}:1`
      ]
      const lines: Array<string> = []
      const error: RuntimeError = await withRuntime(
        adapter,
        [downMirror, { host: address(), insecure: true }],
        (rt) => Effect.flip(rt.apply(pullImage(ref), (line) => Effect.sync(() => lines.push(line))))
      )
      assert.strictEqual(error.reason._tag, "ImageMissing", error.message)
      if (error.reason._tag === "ImageMissing") assert.strictEqual(error.reason.image, ref)
      for (const attempt of attempts) assert.include(error.message, attempt)
      assert.include(error.message, ref)
      assert.include(error.message, "upstream")
      // Upstream was really asked (and could not be reached), not refused before podman tried it.
      assert.isAtLeast(indexOf(lines, `Trying to pull ${ref}`), 0, `${error.message}\n${lines.join("\n")}`)
      assert.isUndefined(imageId(ref))
    })
  }
)

describe.skipIf(skip !== undefined)("archy apply through mirrors (end to end)", () => {
  const container = "archy-pull-e2e"
  const network = "archipelago"

  afterAll(() => {
    if (skip !== undefined) return
    podmanCli(["rm", "-f", "-t", "0", container])
    forget(upstream)
  })

  it("pulls the image from the mirror, then creates and starts the app's container", async (ctx) => {
    const root = join(workDir, "e2e")
    const apps = join(root, "apps")
    const state = join(root, "state")
    mkdirSync(join(apps, container), { recursive: true })
    writeFileSync(
      join(apps, container, "manifest.yml"),
      [
        `id: ${container}`,
        "name: Mirror pull end to end",
        "version: 1.0.0",
        "description: One container whose image only a registry mirror has.",
        "category: system",
        "defaultInstalled: true",
        "containers:",
        `  - name: ${container}`,
        `    image: ${upstream}`,
        `    command: ["/bin/sleep", "3600"]`,
        "    stopTimeout: 1s",
        ""
      ].join("\n")
    )
    podmanCli(["rm", "-f", "-t", "0", container])
    forget(upstream)
    forget(mirrorRef())
    assert.isUndefined(imageId(upstream), `${upstream} is still present before the apply`)

    const flags = [
      "--apps",
      apps,
      "--state-dir",
      state,
      "--mirrors",
      `${downMirror.host},http://${address()}`
    ]
    const archy = (command: string, ...more: Array<string>) =>
      run(join(repoRoot, "bin/archy"), [command, ...flags, ...more], {
        cwd: repoRoot,
        timeoutMs: 110_000,
        // The CLI adapter, on this run's store.
        env: { ...process.env, ARCHY_PODMAN_SOCKET: "", CONTAINERS_STORAGE_CONF: service!.storageConf() }
      })

    // A pass removes every archipelago-labelled container the catalog does not name: look first,
    // so this never tears down another suite's containers.
    const planned = await archy("plan", "--json")
    assert.strictEqual(planned.code, 0, planned.stderr)
    const actions = (JSON.parse(planned.stdout) as { actions: Array<{ kind: string; target: string }> })
      .actions
    const ours = new Set([`image:${upstream}`, `container:${container}`, `network:${network}`])
    // Directory actions are this run's own state dir being set up: never another suite's.
    const foreign = actions.filter((a) => !ours.has(a.target) && !a.target.startsWith(`dir:${state}`))
    if (foreign.length > 0) {
      const why = `the node has other archipelago containers this pass would touch: ${foreign
        .map((a) => `${a.kind} ${a.target}`)
        .join(", ")}`
      if (process.env.CI === "true") assert.fail(why)
      console.warn(`skipping the archy apply end-to-end test: ${why}`)
      ctx.skip(why)
    }
    assert.isTrue(
      actions.some((a) => a.kind === "pull-image" && a.target === `image:${upstream}`),
      `the live plan pulls ${upstream}: ${planned.stdout}`
    )

    const applied = await archy("apply")
    const shown = `stdout:\n${applied.stdout}\nstderr:\n${applied.stderr}`
    assert.strictEqual(applied.code, 0, shown)
    assert.match(applied.stdout, /^done\s+pull-image image:docker\.io\/archy-test\/pulled:1: /m, shown)
    assert.match(applied.stdout, /^done\s+create container:archy-pull-e2e: /m, shown)
    assert.match(applied.stdout, /^done\s+start container:archy-pull-e2e: /m, shown)
    assert.include(applied.stderr, `${downMirror.host}/archy-test/pulled:1`, "the down mirror was tried")
    assert.include(applied.stderr, `Trying to pull ${mirrorRef()}`, "pull progress is on stderr")

    assert.strictEqual(imageId(upstream), busyboxId)
    assert.isUndefined(imageId(mirrorRef()), "the mirror's name is removed")
    const inspected = podmanCli([
      "inspect",
      "--format",
      "{{.State.Status}} {{.Image}} {{.ImageName}}",
      container
    ])
    assert.strictEqual(inspected.status, 0, inspected.stderr)
    assert.strictEqual(inspected.stdout.trim(), `running ${busyboxId} ${upstream}`)
  })
})
