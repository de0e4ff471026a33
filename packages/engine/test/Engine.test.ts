import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { catalogFromSources } from "@archy/core/Catalog"
import * as Desired from "@archy/core/Desired"
import { labels } from "@archy/core/Observed"
import { PodmanState } from "@archy/podman/PodmanState"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import { readCatalogSources, repoAppsDir } from "../../core/test/catalogSources.ts"
import { AdoptionStore } from "../src/AdoptionStore.ts"
import { writeAtomic } from "../src/AtomicFile.ts"
import { HealthBook } from "../src/Health.ts"
import { reconcileOnce, reconcileUntilSettled } from "../src/Reconciler.ts"
import { SecretStore } from "../src/SecretStore.ts"
import { makeMemoryRuntime, ourContainers } from "./MemoryRuntime.ts"

const catalog = catalogFromSources(readCatalogSources(repoAppsDir))

const tempDir = () => mkdtempSync(join(tmpdir(), "archy-engine-"))

const withNode = <A, E>(
  f: (ctx: {
    readonly stateDir: string
    readonly node: Desired.NodeConfig
  }) => Effect.Effect<A, E, SecretStore | AdoptionStore | HealthBook | NodeServices.NodeServices>
) =>
  Effect.gen(function* () {
    const stateDir = tempDir()
    const node = {
      ...Desired.defaultNodeConfig,
      dataRoot: `${stateDir}/apps`,
      secretsDir: `${stateDir}/secrets`
    }
    const layer = Layer.mergeAll(
      SecretStore.layer(`${stateDir}/secrets`),
      AdoptionStore.layer(`${stateDir}/adopted.json`),
      HealthBook.layer
    ).pipe(Layer.provideMerge(NodeServices.layer))
    return yield* f({ stateDir, node }).pipe(
      Effect.provide(layer),
      Effect.ensuring(Effect.sync(() => rmSync(stateDir, { recursive: true, force: true })))
    )
  })

describe("SecretStore", () => {
  it.effect("generates a secret once, 0600 in a 0700 dir, and never regenerates it", () =>
    withNode(({ stateDir }) =>
      Effect.gen(function* () {
        const store = yield* SecretStore
        yield* store.ensure("bitcoin-rpc-password")
        const file = `${stateDir}/secrets/bitcoin-rpc-password`
        const first = readFileSync(file, "utf8")
        assert.match(first.trim(), /^[A-Za-z0-9_-]{43}$/)
        assert.strictEqual(statSync(file).mode & 0o777, 0o600)
        assert.strictEqual(statSync(`${stateDir}/secrets`).mode & 0o777, 0o700)
        yield* store.ensure("bitcoin-rpc-password")
        assert.strictEqual(readFileSync(file, "utf8"), first)
        const values = yield* store.read(["bitcoin-rpc-password", "absent"])
        assert.strictEqual(Redacted.value(values.get("bitcoin-rpc-password")!), first.trim())
        assert.isFalse(values.has("absent"))
        assert.strictEqual(String(values.get("bitcoin-rpc-password")), "<redacted>")
      })
    )
  )

  it.effect("an empty secret file is an error naming the file, not a silent rotation", () =>
    withNode(({ stateDir }) =>
      Effect.gen(function* () {
        const store = yield* SecretStore
        yield* store.ensure("db-password")
        writeFileSync(`${stateDir}/secrets/db-password`, "")
        const error = yield* Effect.flip(store.read(["db-password"]))
        assert.include(error.message, `${stateDir}/secrets/db-password`)
        assert.include(error.message, "is empty")
        yield* store.ensure("db-password")
        assert.strictEqual(readFileSync(`${stateDir}/secrets/db-password`, "utf8"), "")
      })
    )
  )
})

describe("writeAtomic", () => {
  it.effect("replaces a file with the given mode and leaves no temporary file", () =>
    withNode(({ stateDir }) =>
      Effect.gen(function* () {
        const file = `${stateDir}/apps/x/conf`
        yield* writeAtomic(file, new TextEncoder().encode("one\n"), { mode: 0o644 })
        yield* writeAtomic(file, new TextEncoder().encode("two\n"), { mode: 0o600 })
        assert.strictEqual(readFileSync(file, "utf8"), "two\n")
        assert.strictEqual(statSync(file).mode & 0o777, 0o600)
        assert.deepStrictEqual(readdirSync(`${stateDir}/apps/x`), ["conf"])
      })
    )
  )

  it.effect("a failed write keeps the old file intact and removes the temporary file", () =>
    withNode(({ stateDir }) =>
      Effect.gen(function* () {
        const file = `${stateDir}/apps/x/conf`
        yield* writeAtomic(file, new TextEncoder().encode("old\n"), { mode: 0o644 })
        // chown to a uid we may not own: fails for non-root; as root use an impossible target
        // instead: renaming over a directory fails after the temporary file was written.
        const dirTarget = `${stateDir}/apps/x/sub`
        yield* writeAtomic(`${dirTarget}/keep`, new TextEncoder().encode("k"), { mode: 0o644 })
        const failed = yield* Effect.flip(
          writeAtomic(dirTarget, new TextEncoder().encode("new\n"), { mode: 0o644 })
        )
        assert.isDefined(failed)
        assert.strictEqual(readFileSync(file, "utf8"), "old\n")
        assert.deepStrictEqual(readdirSync(`${stateDir}/apps/x`).sort(), ["conf", "sub"])
      })
    )
  )
})

describe("reconcileOnce", () => {
  const selection = Desired.defaultSelection(catalog)

  it.effect("brings a fresh node up, then a second pass has nothing to do", () =>
    withNode(({ stateDir, node }) =>
      Effect.gen(function* () {
        const { control, layer } = yield* makeMemoryRuntime()
        const first = yield* reconcileOnce({ catalog, selection, node }).pipe(Effect.provide(layer))
        // lnd and electrumx wait for bitcoind to be healthy; their UIs for them to run.
        assert.deepStrictEqual(
          first.filter((r) => r.outcome._tag !== "Done").map((r) => `${r.action.target} ${r.outcome._tag}`),
          [
            "container:electrumx Waiting",
            "container:archy-electrs-ui Waiting",
            "container:lnd Waiting",
            "container:archy-lnd-ui Waiting"
          ]
        )
        const settled = yield* reconcileUntilSettled({ catalog, selection, node }, { pauseMs: 0 }).pipe(
          Effect.provide(layer)
        )
        // The next pass checks bitcoind's health first, so lnd, electrumx and (started gates
        // are met within a pass) their UIs all come up in it.
        assert.strictEqual(settled.passes, 1)
        assert.deepStrictEqual(
          settled.reports.filter((r) => r.outcome._tag !== "Done").map((r) => r.action.target),
          []
        )
        const snapshot = yield* Ref.get(control.snapshot)
        assert.strictEqual(ourContainers(snapshot).length, 6)
        assert.isTrue(ourContainers(snapshot).every((c) => c.state === "running"))
        const conf = readFileSync(`${stateDir}/apps/bitcoin-knots/data/bitcoin.conf`, "utf8")
        assert.match(conf, /^rpcauth=archipelago:[0-9a-f]{32}\$[0-9a-f]{64}$/m)
        assert.strictEqual(statSync(`${stateDir}/apps/bitcoin-knots/data/bitcoin.conf`).mode & 0o777, 0o600)
        const secret = readFileSync(`${stateDir}/secrets/bitcoin-rpc-password`, "utf8").trim()
        assert.notInclude(conf, secret)
        const second = yield* reconcileOnce({ catalog, selection, node }).pipe(Effect.provide(layer))
        assert.deepStrictEqual(
          second.map((r) => `${r.action._tag} ${r.action.target}`),
          []
        )
      })
    )
  )

  it.effect("a failing action skips the rest of its app and the pass goes on with the others", () =>
    withNode(({ node }) =>
      Effect.gen(function* () {
        const { control, layer } = yield* makeMemoryRuntime()
        control.failing.add("container:lnd")
        const { reports } = yield* reconcileUntilSettled({ catalog, selection, node }, { pauseMs: 0 }).pipe(
          Effect.provide(layer)
        )
        const outcome = (target: string, tag: string) =>
          reports
            .filter((r) => r.action.target === target)
            .map((r) => r.outcome._tag)
            .includes(tag as never)
        assert.isTrue(outcome("container:lnd", "Failed"))
        assert.isTrue(outcome("container:lnd", "Skipped"))
        assert.isTrue(outcome("container:electrumx", "Done"))
        assert.isTrue(outcome("container:archy-lnd-ui", "Done"))
        const failed = reports.find((r) => r.outcome._tag === "Failed")!
        assert.include(failed.outcome._tag === "Failed" ? failed.outcome.error : "", "injected failure")
      })
    )
  )

  it.effect("cleans what podman's state DB lost, then creates it again under its name (FM6)", () =>
    withNode(({ node }) =>
      Effect.gen(function* () {
        const { control, layer } = yield* makeMemoryRuntime()
        yield* reconcileUntilSettled({ catalog, selection, node }, { pauseMs: 0 }).pipe(Effect.provide(layer))
        // The DB forgot archy-lnd-ui; storage still holds it, so the state check reports it.
        const lost = (yield* Ref.get(control.snapshot)).containers.find((c) => c.name === "archy-lnd-ui")!
        yield* Ref.update(control.snapshot, (s) => ({
          ...s,
          containers: s.containers.filter((c) => c.id !== lost.id)
        }))
        const storage = new Set([lost.id])
        const cleaned: Array<string> = []
        const state = Layer.succeed(
          PodmanState,
          PodmanState.of({
            orphans: (listed, names) =>
              Effect.succeed(
                [...storage]
                  .filter((id) => !listed.some((c) => c.id === id) && names?.has(lost.name) !== false)
                  .map((id) => ({ id, name: lost.name, detail: "storage still holds it" }))
              ),
            clean: (o) =>
              Effect.sync(() => {
                storage.delete(o.id)
                cleaned.push(o.name)
                return ["removed its storage"]
              }),
            deepLooks: Effect.succeed(0)
          })
        )
        const reports = yield* reconcileOnce({ catalog, selection, node }).pipe(
          Effect.provide(Layer.merge(layer, state))
        )
        assert.deepStrictEqual(
          reports.map((r) => `${r.action._tag} ${r.action.target} ${r.outcome._tag}`),
          [
            "CleanOrphan container:archy-lnd-ui Done",
            "Create container:archy-lnd-ui Done",
            "Start container:archy-lnd-ui Done"
          ]
        )
        assert.deepStrictEqual(cleaned, ["archy-lnd-ui"])
        const again = yield* reconcileOnce({ catalog, selection, node }).pipe(
          Effect.provide(Layer.merge(layer, state))
        )
        assert.deepStrictEqual(
          again.map((r) => r.action.target),
          []
        )
      })
    )
  )

  it.effect("adopts an unlabeled container with a known name without recreating it", () =>
    withNode(({ node }) =>
      Effect.gen(function* () {
        const { control, layer } = yield* makeMemoryRuntime()
        yield* reconcileUntilSettled({ catalog, selection, node }, { pauseMs: 0 }).pipe(Effect.provide(layer))
        // The old scripts' container: same name and image, none of our labels.
        yield* Ref.update(control.snapshot, (s) => ({
          ...s,
          containers: s.containers.map((c) =>
            c.name === "archy-lnd-ui" ? { ...c, id: "legacy1", labels: {} } : c
          )
        }))
        const reports = yield* reconcileOnce({ catalog, selection, node }).pipe(Effect.provide(layer))
        assert.deepStrictEqual(
          reports.map((r) => `${r.action._tag} ${r.action.target} ${r.outcome._tag}`),
          ["Adopt container:archy-lnd-ui Done"]
        )
        const again = yield* reconcileOnce({ catalog, selection, node }).pipe(Effect.provide(layer))
        assert.deepStrictEqual(
          again.map((r) => r.action.target),
          []
        )
        const legacy = (yield* Ref.get(control.snapshot)).containers.find((c) => c.id === "legacy1")!
        assert.isUndefined(legacy.labels[labels.app])
      })
    )
  )
})
