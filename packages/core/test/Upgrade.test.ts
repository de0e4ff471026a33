import { assert, describe, it } from "@effect/vitest"
import { catalogFromSources } from "../src/Catalog.ts"
import * as Desired from "../src/Desired.ts"
import { labels, type Observed } from "../src/Observed.ts"
import { plan } from "../src/Plan.ts"
import {
  changesFor,
  type GateInput,
  type GateObservation,
  gateBudgetMs,
  type ImageOverrides,
  imageRefProblem,
  judgeGate,
  overridesOf,
  type UpgradeRecord
} from "../src/Upgrade.ts"

const v1 = "localhost/test/web:1"
const v2 = "localhost/test/web:2"

const manifest = `id: web
name: Web
version: 1.0.0
description: d
category: system
containers:
  - name: web
    image: ${v1}
    mounts:
      - { source: data, target: /data }
  - name: web-ui
    build: { context: . }
`
const catalog = catalogFromSources([
  { file: "web/manifest.yml", dir: "/apps/web", dirName: "web", text: manifest }
])
const selection = { installed: ["web"], stopped: [] }
const desired = (imageOverrides?: ImageOverrides) =>
  Desired.make({
    catalog,
    node: Desired.defaultNodeConfig,
    selection,
    secrets: new Map(),
    ...(imageOverrides !== undefined ? { imageOverrides } : {})
  })
const containerOf = (d: Desired.Desired, name: string) => d.apps[0]!.containers.find((c) => c.name === name)!

describe("Desired with image overrides", () => {
  it("runs the override instead of the manifest's image, and only there", () => {
    const plain = desired()
    const upgraded = desired({ web: { web: v2 } })
    assert.strictEqual(containerOf(upgraded, "web").spec.image, v2)
    assert.deepStrictEqual(containerOf(upgraded, "web").source, { _tag: "Registry", ref: v2 })
    assert.notStrictEqual(containerOf(upgraded, "web").specHash, containerOf(plain, "web").specHash)
    // Everything but the image is the manifest's: same mounts, the other container untouched.
    assert.deepStrictEqual(containerOf(upgraded, "web").spec.mounts, containerOf(plain, "web").spec.mounts)
    assert.deepStrictEqual(containerOf(upgraded, "web-ui"), containerOf(plain, "web-ui"))
    assert.deepStrictEqual(
      upgraded.images.map((i) => i.ref),
      [v2, "localhost/archipelago/web-ui:1.0.0"]
    )
  })

  it("keeps a built container's build when the override names its own image", () => {
    const d = desired({ web: { "web-ui": "localhost/archipelago/web-ui:1.0.0" } })
    assert.strictEqual(containerOf(d, "web-ui").source._tag, "Build")
  })

  it("ignores overrides of apps and containers that are not there", () => {
    assert.deepStrictEqual(desired({ other: { web: v2 }, web: { nope: v2 } }), desired())
  })

  it("makes the plan recreate the container on the new image, and go back the same way", () => {
    const running = (d: Desired.Desired): Observed => ({
      containers: d.apps[0]!.containers.map((c) => ({
        id: `id-${c.name}`,
        name: c.name,
        image: c.spec.image,
        labels: { ...c.spec.labels, [labels.specHash]: c.specHash },
        state: "running" as const,
        startedAtMs: 1
      })),
      images: [{ id: "i1", names: [v1, v2, "localhost/archipelago/web-ui:1.0.0"] }],
      networks: [{ name: "archipelago", subnet: "10.89.0.0/24", gateway: "10.89.0.1" }],
      secrets: [],
      files: []
    })
    const onV1 = running(desired())
    const up = plan(desired({ web: { web: v2 } }), onV1, { now: 10 })
    assert.deepStrictEqual(
      up.map((a) => `${a._tag} ${a.target}`),
      ["Recreate container:web", "Start container:web"]
    )
    const onV2 = running(desired({ web: { web: v2 } }))
    assert.deepStrictEqual(plan(desired({ web: { web: v2 } }), onV2, { now: 10 }), [])
    assert.deepStrictEqual(
      plan(desired(), onV2, { now: 10 }).map((a) => `${a._tag} ${a.target}`),
      ["Recreate container:web", "Start container:web"]
    )
  })
})

describe("overridesOf", () => {
  const record = (
    app: string,
    state: UpgradeRecord["state"],
    images: Record<string, string>
  ): UpgradeRecord => ({
    app,
    state,
    changes: [{ container: app, from: v1, to: v2 }],
    images,
    reason: "",
    startedAtMs: 0,
    updatedAtMs: 0
  })
  it("takes each record's images and leaves out records without any", () => {
    assert.deepStrictEqual(
      overridesOf({
        web: record("web", "pending", { web: v2 }),
        db: record("db", "committed", {}),
        ui: record("ui", "failed", { ui: v1 })
      }),
      { web: { web: v2 }, ui: { ui: v1 } }
    )
  })
})

describe("imageRefProblem", () => {
  it("accepts fully qualified, pinned references only", () => {
    assert.isUndefined(imageRefProblem("docker.io/lightninglabs/lnd:v0.19.3-beta"))
    assert.isUndefined(imageRefProblem(`localhost/x/y@sha256:${"a".repeat(64)}`))
    assert.match(imageRefProblem("busybox") ?? "", /fully qualified/)
    assert.match(imageRefProblem("docker.io/library/busybox") ?? "", /pinned tag or digest/)
    assert.match(imageRefProblem("docker.io/x/y:1 --privileged") ?? "", /fully qualified/)
  })
})

describe("changesFor", () => {
  const one = [{ container: "web", manifestImage: v1, runningImage: v1 }]
  const two = [
    { container: "web", manifestImage: v2, runningImage: v1 },
    { container: "web-ui", manifestImage: "localhost/ui:1", runningImage: "localhost/ui:1" }
  ]

  it("moves the app's only container to the given image", () => {
    assert.deepStrictEqual(changesFor("web", one, { image: v2 }), [{ container: "web", from: v1, to: v2 }])
  })

  it("without an image, moves each container to its manifest's image where it runs another", () => {
    assert.deepStrictEqual(changesFor("web", two, {}), [{ container: "web", from: v1, to: v2 }])
    assert.deepStrictEqual(changesFor("web", one, {}), [])
  })

  it("needs --container with an image for an app of several containers", () => {
    assert.match(changesFor("web", two, { image: v2 }) as string, /has 2 containers .*--container/)
    assert.deepStrictEqual(changesFor("web", two, { image: "localhost/ui:2", container: "web-ui" }), [
      { container: "web-ui", from: "localhost/ui:1", to: "localhost/ui:2" }
    ])
  })

  it("refuses an unknown container, a bad reference and a container that does not exist yet", () => {
    assert.match(changesFor("web", one, { container: "db" }) as string, /no container db \(it has web\)/)
    assert.match(changesFor("web", one, { image: "web:2" }) as string, /^image: expected a fully qualified/)
    assert.match(
      changesFor("web", [{ container: "web", manifestImage: v1, runningImage: undefined }], {
        image: v2
      }) as string,
      /does not exist yet/
    )
  })
})

describe("judgeGate", () => {
  const change = { container: "web", from: v1, to: v2 }
  const running = (o: Partial<GateObservation> = {}): GateObservation => ({
    container: "web",
    image: v2,
    state: "running",
    startedAtMs: 1_000,
    hasCheck: true,
    ...o
  })
  const gate = (observed: GateObservation, over: Partial<GateInput> = {}) =>
    judgeGate({
      nowMs: 5_000,
      deadlineMs: 60_000,
      settleMs: 5_000,
      changes: [change],
      observed: [observed],
      firstStartMs: new Map([["web", 1_000]]),
      ...over
    })

  it("passes when the new image runs and its check passed", () => {
    const v = gate(running({ health: { status: "healthy", reason: "" } }))
    assert.deepStrictEqual(v, { _tag: "Healthy", reason: "web passed its health check" })
  })

  it("waits while the check is in progress, the old container is still there, or none exists", () => {
    assert.strictEqual(
      gate(running({ health: { status: "starting", reason: "health check failing (1 of 3)" } }))._tag,
      "Waiting"
    )
    assert.match(gate(running({ image: v1 })).reason, /still runs localhost\/test\/web:1/)
    assert.match(gate({ container: "web", image: "", hasCheck: true }).reason, /does not exist yet/)
    assert.match(gate(running({ state: "created" }), { firstStartMs: new Map() }).reason, /is created/)
  })

  it("fails at once on an unhealthy verdict, with the check's words", () => {
    const v = gate(
      running({ health: { status: "unhealthy", reason: "health check failed 3 times: no RPC" } })
    )
    assert.deepStrictEqual(v, {
      _tag: "Unhealthy",
      reason: "web on localhost/test/web:2: health check failed 3 times: no RPC"
    })
  })

  it("fails on a container that exited, or that was restarted after exiting", () => {
    assert.deepStrictEqual(gate(running({ state: "exited", exitCode: 3 })), {
      _tag: "Unhealthy",
      reason: "web exited on localhost/test/web:2 with exit code 3"
    })
    assert.match(gate(running({ startedAtMs: 4_000 })).reason, /exited and was restarted/)
    assert.strictEqual(gate(running({ startedAtMs: 4_000 }))._tag, "Unhealthy")
  })

  it("fails at the deadline with what it was waiting for", () => {
    const v = gate(running({ health: { status: "starting", reason: "health check failing (2 of 3)" } }), {
      nowMs: 60_000
    })
    assert.deepStrictEqual(v, {
      _tag: "Unhealthy",
      reason: "not healthy in time: web: health check failing (2 of 3)"
    })
  })

  it("without a health check: healthy once it ran the settle time without exiting", () => {
    const noCheck = running({ hasCheck: false })
    assert.match(
      gate(noCheck, { nowMs: 3_000 }).reason,
      /declares no health check: running, settling for 5 s/
    )
    assert.strictEqual(gate(noCheck, { nowMs: 3_000 })._tag, "Waiting")
    assert.deepStrictEqual(gate(noCheck, { nowMs: 6_000 }), {
      _tag: "Healthy",
      reason: "web declares no health check and ran 5 s without exiting"
    })
    assert.strictEqual(
      gate(running({ hasCheck: false, state: "exited", exitCode: 1 }), { nowMs: 6_000 })._tag,
      "Unhealthy"
    )
  })

  it("needs every changed container to pass", () => {
    const both = [change, { container: "api", from: v1, to: v2 }]
    const v = judgeGate({
      nowMs: 5_000,
      deadlineMs: 60_000,
      settleMs: 5_000,
      changes: both,
      observed: [running({ health: { status: "healthy", reason: "" } }), running({ container: "api" })],
      firstStartMs: new Map()
    })
    assert.deepStrictEqual(v, { _tag: "Waiting", reason: "api: no health check has run yet" })
  })
})

describe("gateBudgetMs", () => {
  it("is the start period plus retries + 1 checks, plus the grace; the settle time without a check", () => {
    assert.strictEqual(
      gateBudgetMs({ startPeriodMs: 10_000, intervalMs: 1_000, timeoutMs: 2_000, retries: 3 }, 5_000, 30_000),
      10_000 + 4 * 3_000 + 30_000
    )
    assert.strictEqual(gateBudgetMs(undefined, 5_000, 30_000), 35_000)
  })
})
