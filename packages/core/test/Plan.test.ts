import { readFileSync, writeFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import * as fc from "fast-check"
import { type Action, renderText, toJson } from "../src/Action.ts"
import { type Catalog, catalogFromSources } from "../src/Catalog.ts"
import * as Desired from "../src/Desired.ts"
import { empty as emptyObserved, labels, type Observed, type ObservedContainer } from "../src/Observed.ts"
import { plan } from "../src/Plan.ts"
import { readCatalogSources, repoAppsDir } from "./catalogSources.ts"
import { applyPlan, desiredFor, type ModelNode, secretValue } from "./model.ts"

const starter: Catalog = catalogFromSources(
  readCatalogSources(repoAppsDir, (dirName) => `apps/${dirName}/manifest.yml`)
)
const now = 1_800_000_000_000
/** PLAN_PROPERTY_RUNS raises the number of generated cases for a longer soak. */
const propertyRuns = Number(process.env.PLAN_PROPERTY_RUNS ?? 300)
const freshNode: ModelNode = { observed: emptyObserved, secrets: new Map() }

/** Carries a plan out on the model until nothing is left (at most `rounds` passes). */
const converge = (
  catalog: Catalog,
  node: ModelNode,
  selection?: Desired.Selection,
  rounds = 3
): ModelNode => {
  let n = node
  for (let i = 0; i < rounds; i++) {
    const actions = plan(desiredFor(catalog, n, selection), n.observed, { now })
    if (actions.length === 0) return n
    n = applyPlan(n, actions, now + i * 1000)
  }
  return n
}

const planFor = (node: ModelNode, selection?: Desired.Selection) =>
  plan(desiredFor(starter, node, selection), node.observed, { now: now + 10_000 })

const lines = (actions: ReadonlyArray<Action>) => actions.map((a) => `${toJson(a).kind} ${a.target}`)

const converged = converge(starter, freshNode)
const container = (node: ModelNode, name: string): ObservedContainer =>
  node.observed.containers.find((c) => c.name === name)!
const withContainer = (
  node: ModelNode,
  name: string,
  f: (c: ObservedContainer) => ObservedContainer | undefined
) => ({
  ...node,
  observed: {
    ...node.observed,
    containers: node.observed.containers.flatMap((c) =>
      c.name === name ? [f(c)].filter((x) => x !== undefined) : [c]
    )
  }
})
const bitcoinConf = "/var/lib/archipelago/apps/bitcoin-knots/data/bitcoin.conf"

describe("plan", () => {
  it("the catalog loads without issues, and a fresh node installs the starter set", () => {
    assert.deepStrictEqual(starter.issues, [])
    assert.deepStrictEqual(Desired.defaultSelection(starter).installed, [
      "bitcoin-knots",
      "bitcoin-ui",
      "electrumx",
      "electrs-ui",
      "lnd",
      "lnd-ui"
    ])
  })

  it("plans a fresh node as the golden file says", () => {
    const text = renderText(plan(desiredFor(starter, freshNode), emptyObserved, { now }))
    const golden = new URL("./golden/fresh-node.plan.txt", import.meta.url)
    if (process.env.UPDATE_GOLDEN === "1") writeFileSync(golden, text)
    assert.strictEqual(text, readFileSync(golden, "utf8"))
  })

  it("orders a fresh node: prerequisites, then each app after its dependencies, files before containers", () => {
    const l = lines(planFor(freshNode))
    assert.deepStrictEqual(l.slice(0, 5), [
      "ensure-directory dir:/var/lib/archipelago",
      "ensure-directory dir:/var/lib/archipelago/apps",
      "ensure-directory dir:/var/lib/archipelago/secrets",
      "ensure-network network:archipelago",
      "ensure-secret secret:bitcoin-rpc-password"
    ])
    const at = (s: string) => l.indexOf(s)
    // An app's directories come first, parents before children, then its files and containers.
    assert.isTrue(
      at("ensure-directory dir:/var/lib/archipelago/apps/bitcoin-knots") <
        at("ensure-directory dir:/var/lib/archipelago/apps/bitcoin-knots/data")
    )
    assert.isTrue(
      at("ensure-directory dir:/var/lib/archipelago/apps/bitcoin-knots/data") <
        at(`write-file file:${bitcoinConf}`)
    )
    assert.isTrue(at(`write-file file:${bitcoinConf}`) < at("create container:bitcoin-knots"))
    assert.isTrue(at("start container:bitcoin-knots") < at("create container:archy-bitcoin-ui"))
    // lnd and electrumx need bitcoind healthy, so they wait; their UIs wait for them to run.
    assert.isTrue(at("wait container:lnd") > at("start container:bitcoin-knots"))
    assert.isTrue(at("wait container:archy-lnd-ui") > at("wait container:lnd"))
  })

  it("gates a dependant on its dependency's health, with the reason, and lets it start once healthy", () => {
    const bitcoind = (health: ObservedContainer["health"]) =>
      withContainer(
        withContainer(converged, "lnd", () => undefined),
        "bitcoin-knots",
        (c) => {
          const { health: _h, ...rest } = c
          return health === undefined ? rest : { ...rest, health }
        }
      )
    const starting = planFor(bitcoind("starting")).find((a) => a.target === "container:lnd")!
    assert.strictEqual(starting._tag, "Wait")
    assert.strictEqual(
      starting.cause,
      "waiting for bitcoind (bitcoin-knots) to be healthy (bitcoin-knots is starting)"
    )
    const unchecked = planFor(bitcoind(undefined)).find((a) => a.target === "container:lnd")!
    assert.strictEqual(
      unchecked.cause,
      "waiting for bitcoind (bitcoin-knots) to be healthy (bitcoin-knots has not passed a health check yet)"
    )
    assert.deepStrictEqual(lines(planFor(bitcoind("healthy"))), [
      "create container:lnd",
      "start container:lnd"
    ])
  })

  it("a converged node plans nothing", () => {
    assert.deepStrictEqual(lines(planFor(converged)), [])
  })

  it("recreates what vanished (FM1/FM3) and starts what stopped", () => {
    let n = withContainer(converged, "archy-bitcoin-ui", () => undefined)
    n = withContainer(n, "archy-lnd-ui", (c) => ({ ...c, state: "exited", exitCode: 137 }))
    const actions = planFor(n)
    assert.deepStrictEqual(lines(actions), [
      "create container:archy-bitcoin-ui",
      "start container:archy-bitcoin-ui",
      "start container:archy-lnd-ui"
    ])
    assert.strictEqual(actions[2]!.cause, "container archy-lnd-ui is exited (exit code 137)")
  })

  it("cleans what podman's state DB lost before creating it again (FM6)", () => {
    const id = "a".repeat(64)
    let n = withContainer(converged, "archy-bitcoin-ui", () => undefined)
    n = {
      ...n,
      observed: {
        ...n.observed,
        orphans: [{ id, name: "archy-bitcoin-ui", detail: "storage still holds it" }]
      }
    }
    const actions = planFor(n)
    assert.deepStrictEqual(lines(actions), [
      "clean-orphan container:archy-bitcoin-ui",
      "create container:archy-bitcoin-ui",
      "start container:archy-bitcoin-ui"
    ])
    assert.strictEqual(
      actions[0]!.cause,
      "podman's state DB does not list container archy-bitcoin-ui (aaaaaaaaaaaa), but its storage still holds it"
    )
    assert.deepStrictEqual(lines(planFor(applyPlan(n, actions, now))), [])
  })

  it("rewrites a drifted bitcoin.conf and restarts exactly its consumer (FM2)", () => {
    const n: ModelNode = {
      ...converged,
      observed: {
        ...converged.observed,
        files: converged.observed.files.map((f) =>
          f.path === bitcoinConf ? { ...f, sha256: "0".repeat(64) } : f
        )
      }
    }
    const actions = planFor(n)
    assert.deepStrictEqual(lines(actions), [
      `write-file file:${bitcoinConf}`,
      "restart container:bitcoin-knots"
    ])
    assert.strictEqual(actions[0]!.cause, "bitcoin.conf differs from its render (bitcoin-conf)")
    assert.strictEqual(actions[1]!.cause, "bitcoin.conf is being rewritten")
  })

  it("repairs a file's mode without other changes mattering", () => {
    const n: ModelNode = {
      ...converged,
      observed: {
        ...converged.observed,
        files: converged.observed.files.map((f) => (f.path === bitcoinConf ? { ...f, mode: 0o100644 } : f))
      }
    }
    const actions = planFor(n)
    assert.strictEqual(actions[0]!.cause, "bitcoin.conf has mode 0644, want 0600")
  })

  it("restarts a consumer whose file changed after it started, even if the write happened in an earlier pass", () => {
    const started = container(converged, "bitcoin-knots").startedAtMs!
    const n: ModelNode = {
      ...converged,
      observed: {
        ...converged.observed,
        files: converged.observed.files.map((f) =>
          f.path === bitcoinConf ? { ...f, mtimeMs: started + 1000 } : f
        )
      }
    }
    const actions = planFor(n)
    assert.deepStrictEqual(lines(actions), ["restart container:bitcoin-knots"])
    assert.strictEqual(actions[0]!.cause, "bitcoin.conf changed after the container started")
    // podman's start times are whole seconds: a write within that second is not provably later.
    const sameSecond: ModelNode = {
      ...converged,
      observed: {
        ...converged.observed,
        files: converged.observed.files.map((f) =>
          f.path === bitcoinConf ? { ...f, mtimeMs: started + 999 } : f
        )
      }
    }
    assert.deepStrictEqual(lines(planFor(sameSecond)), [])
  })

  it("recreates a container whose spec hash label differs", () => {
    const n = withContainer(converged, "lnd", (c) => ({
      ...c,
      labels: { ...c.labels, [labels.specHash]: "deadbeef" }
    }))
    const actions = planFor(n)
    assert.deepStrictEqual(lines(actions), ["recreate container:lnd", "start container:lnd"])
    assert.match(actions[0]!.cause, /^spec changed \(hash deadbeef -> [0-9a-f]{16}\)$/)
  })

  it("removes our orphans and duplicates but never a container without our labels", () => {
    const lnd = container(converged, "lnd")
    const n: ModelNode = {
      ...converged,
      observed: {
        ...converged.observed,
        containers: [
          ...converged.observed.containers,
          { ...lnd, id: "zzzz-duplicate", name: "lnd-old" },
          {
            id: "orphan1",
            name: "old-app",
            image: "docker.io/x/y:1",
            labels: { [labels.app]: "old-app", [labels.container]: "old-app" },
            state: "running"
          },
          { id: "foreign1", name: "someone-elses", image: "docker.io/x/z:1", labels: {}, state: "running" }
        ]
      }
    }
    const actions = planFor(n)
    assert.deepStrictEqual(lines(actions), ["remove container:lnd-old", "remove container:old-app"])
    assert.strictEqual(actions[0]!.cause, `duplicate of container lnd (${lnd.id.slice(0, 12)} is kept)`)
    assert.strictEqual(actions[1]!.cause, "app old-app is not installed")
    // Without the stop-timeout label (made before it existed) the default grace of 30 s.
    assert.strictEqual((actions[1] as Action & { readonly timeoutSeconds: number }).timeoutSeconds, 30)
    // With it, the grace its manifest asked for (bitcoind: 600 s), not a fixed 10 s.
    const gone = planFor({
      ...converged,
      observed: {
        ...converged.observed,
        containers: [
          ...converged.observed.containers,
          {
            id: "orphan2",
            name: "old-node",
            image: "docker.io/x/node:1",
            labels: { [labels.app]: "old-node", [labels.container]: "old-node", [labels.stopTimeout]: "600" },
            state: "running"
          }
        ]
      }
    }).find((a) => a._tag === "Remove")!
    assert.strictEqual((gone as Action & { readonly timeoutSeconds: number }).timeoutSeconds, 600)
  })

  it("adopts an unlabeled container with a known name; recreates it when its image differs", () => {
    const unlabel = (c: ObservedContainer) => ({ ...c, labels: {} })
    const same = planFor(withContainer(converged, "archy-electrs-ui", unlabel))
    assert.deepStrictEqual(lines(same), ["adopt container:archy-electrs-ui"])
    const other = planFor(
      withContainer(converged, "electrumx", (c) => ({
        ...unlabel(c),
        image: "docker.io/lukechilds/electrumx:v1.15.0"
      }))
    )
    assert.deepStrictEqual(lines(other), [
      "adopt container:electrumx",
      "recreate container:electrumx",
      "start container:electrumx"
    ])
  })

  // Found by the simulation (seed 2): podman runs only the health check a container was created
  // with, so an adopted bitcoind never passed ours and lnd waited for it forever.
  it("recreates an adopted container with the right image when dependants gate on its health", () => {
    const adopted = planFor(withContainer(converged, "bitcoin-knots", (c) => ({ ...c, labels: {} })))
    assert.deepStrictEqual(lines(adopted), [
      "adopt container:bitcoin-knots",
      "recreate container:bitcoin-knots",
      "start container:bitcoin-knots"
    ])
    assert.include(adopted[1]!.cause, "health check")
  })

  it("waits while a crashed container backs off, with the reason", () => {
    const n: ModelNode = {
      ...withContainer(converged, "lnd", (c) => ({ ...c, state: "exited", exitCode: 1 })),
      observed: {
        ...withContainer(converged, "lnd", (c) => ({ ...c, state: "exited", exitCode: 1 })).observed,
        backoff: [{ container: "lnd", untilMs: now + 40_000, reason: "exit code 1, 3 crashes" }]
      }
    }
    const actions = planFor(n)
    assert.deepStrictEqual(lines(actions), ["wait container:lnd"])
    assert.strictEqual(
      actions[0]!.cause,
      "backing off after a crash (exit code 1, 3 crashes); next start in 30s"
    )
  })

  it("restarts an exited container only as its restart policy allows", () => {
    const policy = (p: "always" | "on-failure" | "never") =>
      catalogFromSources([
        {
          file: "apps/one/manifest.yml",
          dir: "apps/one",
          dirName: "one",
          text: [
            "id: one",
            "name: One",
            "version: 1.0.0",
            "description: One container.",
            "category: system",
            "defaultInstalled: true",
            "containers:",
            "  - name: one",
            "    image: docker.io/library/busybox:1.36",
            `    restart: { policy: ${p} }`
          ].join("\n")
        }
      ])
    const planWith = (p: "always" | "on-failure" | "never", exitCode: number) => {
      const c = policy(p)
      const node = converge(c, freshNode)
      const exited: ModelNode = withContainer(node, "one", (x) => ({ ...x, state: "exited", exitCode }))
      return plan(desiredFor(c, exited), exited.observed, { now: now + 10_000 }).map(
        (a) => `${a._tag}: ${a.cause}`
      )
    }
    assert.deepStrictEqual(planWith("always", 0), ["Start: container one is exited (exit code 0)"])
    assert.deepStrictEqual(planWith("on-failure", 1), ["Start: container one is exited (exit code 1)"])
    assert.deepStrictEqual(planWith("on-failure", 0), [
      "Wait: exited (exit code 0); its restart policy is on-failure"
    ])
    assert.deepStrictEqual(planWith("never", 137), [
      "Wait: exited (exit code 137); its restart policy is never"
    ])
  })

  it("writes bitcoin-ui's fail-safe nginx.conf when it cannot be rendered, never stale credentials", () => {
    const broken = catalogFromSources(
      readCatalogSources(repoAppsDir, (dirName) => `apps/${dirName}/manifest.yml`).map((source) => ({
        ...source,
        // An rpcUser bitcoind would reject: the renderer refuses it.
        text:
          source.dirName === "bitcoin-ui"
            ? source.text.replace("    params:\n", '    params:\n      rpcUser: "bad:user"\n')
            : source.text
      }))
    )
    assert.deepStrictEqual(broken.issues, [])
    const desired = desiredFor(broken, converged)
    const actions = plan(desired, converged.observed, { now: now + 10_000 })
    const nginx = "/var/lib/archipelago/apps/bitcoin-ui/nginx.conf"
    assert.deepStrictEqual(lines(actions), [`write-file file:${nginx}`, "restart container:archy-bitcoin-ui"])
    assert.match(
      actions[0]!.cause,
      /^nginx\.conf cannot be rendered \(.*bad:user.*\): writing its fail-safe$/
    )
    const file = desired.apps.find((a) => a.id === "bitcoin-ui")!.files[0]!
    const content = Redacted.value(file.content!)
    assert.include(content, "return 404;")
    assert.notInclude(content, "Authorization")
    // Once written, the fail-safe is stable: nothing more to do.
    const after = applyPlan(converged, actions, now + 20_000)
    assert.deepStrictEqual(lines(plan(desiredFor(broken, after), after.observed, { now: now + 30_000 })), [])
  })

  it("stops the apps the user stopped, dependants first", () => {
    const actions = planFor(converged, {
      installed: Desired.defaultSelection(starter).installed,
      stopped: ["bitcoin-knots", "lnd"]
    })
    assert.deepStrictEqual(lines(actions), ["stop container:lnd", "stop container:bitcoin-knots"])
    assert.strictEqual((actions[1] as Action & { timeoutSeconds: number }).timeoutSeconds, 600)
  })

  it("blocks, but never removes, an app whose dependency is not installed or which conflicts", () => {
    const selection = { installed: ["lnd", "lnd-ui"], stopped: [] }
    const fresh = planFor(freshNode, selection)
    const wait = fresh.find((a) => a.target === "container:lnd")!
    assert.strictEqual(wait._tag, "Wait")
    assert.strictEqual(wait.cause, "app lnd needs bitcoind: install an app that provides it")
    const kept = planFor(converged, selection).filter((a) => a.target === "container:lnd")
    assert.deepStrictEqual(kept, [])
  })

  it("keeps the containers of an installed app whose manifest no longer loads", () => {
    const selection = {
      installed: [...Desired.defaultSelection(starter).installed, "broken-app"],
      stopped: []
    }
    const n: ModelNode = {
      ...converged,
      observed: {
        ...converged.observed,
        containers: [
          ...converged.observed.containers,
          {
            id: "b1",
            name: "broken-app",
            image: "docker.io/x/b:1",
            labels: { [labels.app]: "broken-app", [labels.container]: "broken-app" },
            state: "running"
          }
        ]
      }
    }
    assert.deepStrictEqual(lines(planFor(n, selection)), [])
  })

  it("never puts a secret value into an action's text or JSON", () => {
    const secret = Redacted.value(secretValue("bitcoin-rpc-password"))
    const n: ModelNode = { ...converged, observed: { ...converged.observed, files: [] } }
    const actions = planFor(n)
    assert.isAbove(actions.length, 0)
    assert.notInclude(renderText(actions), secret)
    assert.notInclude(JSON.stringify(actions.map(toJson)), secret)
  })
})

// Perturbations of a converged node, as the field produces them.
type Fault =
  | { readonly kind: "remove" | "stop" | "rehash" | "unlabel" | "duplicate"; readonly container: number }
  | { readonly kind: "corrupt" | "chmod" | "delete" | "touch"; readonly file: number }
  | { readonly kind: "dropImage"; readonly image: number }
  | { readonly kind: "dropSecret" | "dropNetwork" }
  | { readonly kind: "foreign"; readonly name: string }

const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  fc.record({
    kind: fc.constantFrom(
      "remove" as const,
      "stop" as const,
      "rehash" as const,
      "unlabel" as const,
      "duplicate" as const
    ),
    container: fc.nat()
  }),
  fc.record({
    kind: fc.constantFrom("corrupt" as const, "chmod" as const, "delete" as const, "touch" as const),
    file: fc.nat()
  }),
  fc.record({ kind: fc.constant("dropImage" as const), image: fc.nat() }),
  fc.record({ kind: fc.constantFrom("dropSecret" as const, "dropNetwork" as const) }),
  fc.record({
    kind: fc.constant("foreign" as const),
    name: fc.constantFrom("watchtower", "portainer", "lnd", "bitcoin-knots")
  })
)

const applyFault = (node: ModelNode, fault: Fault, i: number): ModelNode => {
  const o = node.observed
  const cs = o.containers
  const fs = o.files
  const pick = <A>(xs: ReadonlyArray<A>, k: number) => xs[k % Math.max(xs.length, 1)]
  const set = (observed: Observed): ModelNode => ({ ...node, observed })
  switch (fault.kind) {
    case "remove":
    case "stop":
    case "rehash":
    case "unlabel":
    case "duplicate": {
      const c = pick(cs, fault.container)
      if (c === undefined) return node
      const others = cs.filter((x) => x !== c)
      if (fault.kind === "remove") return set({ ...o, containers: others })
      if (fault.kind === "stop")
        return set({ ...o, containers: [...others, { ...c, state: "exited", exitCode: 143 }] })
      if (fault.kind === "rehash") {
        return set({
          ...o,
          containers: [...others, { ...c, labels: { ...c.labels, [labels.specHash]: "stale" } }]
        })
      }
      if (fault.kind === "unlabel") return set({ ...o, containers: [...others, { ...c, labels: {} }] })
      return set({ ...o, containers: [...cs, { ...c, id: `dup${i}-${c.id}`, name: `${c.name}-dup${i}` }] })
    }
    case "corrupt":
    case "chmod":
    case "delete":
    case "touch": {
      const f = pick(fs, fault.file)
      if (f === undefined) return node
      const others = fs.filter((x) => x !== f)
      if (fault.kind === "delete") return set({ ...o, files: others })
      const changed =
        fault.kind === "corrupt"
          ? { ...f, sha256: "f".repeat(64) }
          : fault.kind === "chmod"
            ? { ...f, mode: 0o644 === f.mode ? 0o600 : 0o644 }
            : { ...f, mtimeMs: now + 5_000 }
      return set({ ...o, files: [...others, changed] })
    }
    case "dropImage": {
      const img = pick(o.images, fault.image)
      return img === undefined ? node : set({ ...o, images: o.images.filter((x) => x !== img) })
    }
    case "dropSecret":
      return { observed: { ...o, secrets: [] }, secrets: new Map() }
    case "dropNetwork":
      return set({ ...o, networks: [] })
    case "foreign":
      return cs.some((c) => c.name === fault.name)
        ? node
        : set({
            ...o,
            containers: [
              ...cs,
              {
                id: `foreign-${fault.name}`,
                name: fault.name,
                image: "docker.io/x/y:1",
                labels: {},
                state: "running"
              }
            ]
          })
  }
}

const shuffle = <A>(xs: ReadonlyArray<A>, seed: number): ReadonlyArray<A> =>
  xs
    .map((x, i) => ({ x, k: (Math.imul(i + 1, 2654435761) ^ seed) >>> 0 }))
    .sort((a, b) => a.k - b.k)
    .map(({ x }) => x)

describe("plan properties", () => {
  const perturbed = fc.array(faultArb, { maxLength: 8 }).map((faults) => faults.reduce(applyFault, converged))

  // Dependants wait for their dependencies' health, which the model grants on start: a node
  // converges in at most one pass per level of the dependency chain (three here), then stays.
  it("carrying out plans converges within the dependency depth, then leaves nothing to do", () => {
    fc.assert(
      fc.property(perturbed, (node) => {
        let n = node
        for (let round = 0; round < 3; round++) {
          const actions = plan(desiredFor(starter, n), n.observed, { now: now + 10_000 * (round + 1) })
          n = applyPlan(n, actions, now + 10_000 * (round + 1) + 1_000)
        }
        const last = plan(desiredFor(starter, n), n.observed, { now: now + 50_000 })
        assert.deepStrictEqual(lines(last), [])
      }),
      { numRuns: propertyRuns }
    )
  })

  it("the same inputs give the same plan, whatever order podman lists things in", () => {
    fc.assert(
      fc.property(perturbed, fc.integer(), (node, seed) => {
        const desired = desiredFor(starter, node)
        const a = plan(desired, node.observed, { now })
        const reordered: Observed = {
          ...node.observed,
          containers: shuffle(node.observed.containers, seed),
          images: shuffle(node.observed.images, seed),
          files: shuffle(node.observed.files, seed)
        }
        assert.deepStrictEqual(a.map(toJson), plan(desired, reordered, { now }).map(toJson))
        assert.deepStrictEqual(
          a.map(toJson),
          plan(desiredFor(starter, node), node.observed, { now }).map(toJson)
        )
      }),
      { numRuns: propertyRuns }
    )
  })

  it("every action has a target and a non-empty cause", () => {
    fc.assert(
      fc.property(perturbed, (node) => {
        for (const a of plan(desiredFor(starter, node), node.observed, { now })) {
          assert.isTrue(a.target.length > 0 && a.cause.trim().length > 0, `${a._tag} ${a.target}`)
        }
      }),
      { numRuns: propertyRuns }
    )
  })

  it("never touches a container without our labels unless a manifest claims its name", () => {
    fc.assert(
      fc.property(perturbed, (node) => {
        const claimed = new Set(starter.apps.flatMap((a) => a.manifest.containers.map((c) => c.name)))
        const foreign = new Set(
          node.observed.containers
            .filter((c) => c.labels[labels.app] === undefined && !claimed.has(c.name))
            .map((c) => c.name)
        )
        for (const a of plan(desiredFor(starter, node), node.observed, { now })) {
          assert.isFalse(foreign.has(a.target.replace(/^container:/, "")), `${a._tag} ${a.target}`)
        }
      }),
      { numRuns: propertyRuns }
    )
  })
})
