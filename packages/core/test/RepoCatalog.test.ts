/**
 * Checks over the real catalog in apps/: what `archy validate` checks, plus the node-wide rules a
 * single manifest cannot see (pinned images, one owner per host port, container name and data
 * dir, loopback-only ports, secrets only as files, every config renderable).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import { catalogFromSources, conflictsWith, orderByDependencies, providersOf } from "../src/Catalog.ts"
import * as Desired from "../src/Desired.ts"
import { formatIssue } from "../src/Manifest.ts"
import * as Settings from "../src/Settings.ts"
import { readCatalogSources, repoAppsDir } from "./catalogSources.ts"

const sources = readCatalogSources(repoAppsDir)
const catalog = catalogFromSources(sources)
const manifests = catalog.apps.map((a) => a.manifest)
const containers = manifests.flatMap((m) => m.containers.map((c) => ({ app: m, c })))
const byId = (id: string) => manifests.find((m) => m.id === id)!

/** Every app, with the first of each conflicting pair; `alternatives` picks the other side. */
const everything = (alternatives: boolean): Desired.Selection => {
  const installed: Array<string> = []
  for (const m of manifests) {
    if (installed.some((id) => conflictsWith(byId(id), m))) continue
    installed.push(m.id)
  }
  const swap = (id: string) =>
    manifests.find((m) => conflictsWith(m, byId(id)) && !installed.includes(m.id))?.id ?? id
  return { installed: alternatives ? installed.map(swap) : installed, stopped: [] }
}

/** A recognisable value per secret, so a leak into a container spec is easy to spot. */
const secretValues = new Map(
  [...new Set(manifests.flatMap((m) => m.secrets ?? []))].map(
    (name) => [name, Redacted.make(`SENTINEL-${name}-Zq9`)] as const
  )
)
const desiredFor = (selection: Desired.Selection) =>
  Desired.make({ catalog, node: Desired.defaultNodeConfig, selection, secrets: secretValues })

describe("the app catalog in apps/", () => {
  it("loads with no issues and defines at least 20 containers", () => {
    assert.deepStrictEqual(catalog.issues.map(formatIssue), [])
    assert.strictEqual(catalog.apps.length, sources.length)
    assert.isAtLeast(containers.length, 20)
  })

  it("pins every image: a tag other than latest, or a digest", () => {
    for (const { c } of containers) {
      if (c.image === undefined) continue
      const [name, digest] = c.image.split("@")
      const tag = /:([^/:]+)$/.exec(name!)?.[1]
      assert.isTrue(
        digest !== undefined ? /^sha256:[a-f0-9]{64}$/.test(digest) : tag !== undefined && tag !== "latest",
        `${c.name}: ${c.image} is not pinned`
      )
      assert.notStrictEqual(tag, "latest", `${c.name}: a digest next to :latest hides what it is`)
    }
  })

  it("has no dependency cycles, and every dependency has a provider", () => {
    const ordered = orderByDependencies(catalog.apps)
    assert.deepStrictEqual(ordered.cycles, [])
    assert.strictEqual(ordered.apps.length, catalog.apps.length)
    for (const m of manifests) {
      for (const d of m.dependencies ?? []) {
        assert.isAbove(providersOf(catalog.apps, d.app).length, 0, `${m.id} needs ${d.app}`)
      }
    }
  })

  it("gives each host port and container name one owner, unless the owners conflict", () => {
    const owners = new Map<string, Array<string>>()
    const claim = (key: string, app: string) => owners.set(key, [...(owners.get(key) ?? []), app])
    for (const { app, c } of containers) {
      claim(`name ${c.name}`, app.id)
      // A port taken from a setting is claimed at its default, as the loader does.
      const defaults = Settings.effective(app.settings, {}).values
      for (const p of c.ports ?? []) {
        claim(`port ${p.protocol ?? "tcp"}/${Settings.resolve(p.host, (ref) => defaults[ref.key])}`, app.id)
      }
    }
    const shared: Array<string> = []
    for (const [key, apps] of owners) {
      const unique = [...new Set(apps)]
      assert.strictEqual(unique.length, apps.length, `${key} is claimed twice inside one app`)
      for (const a of unique) {
        for (const b of unique) {
          if (a < b) {
            assert.isTrue(conflictsWith(byId(a), byId(b)), `${key} is claimed by ${a} and ${b}`)
            shared.push(`${key}: ${a}, ${b}`)
          }
        }
      }
    }
    // The exceptions, spelled out: the two bitcoinds and the two Electrum servers.
    assert.deepStrictEqual(shared.sort(), [
      "port tcp/28332: bitcoin-core, bitcoin-knots",
      "port tcp/28333: bitcoin-core, bitcoin-knots",
      "port tcp/50001: electrumx, fulcrum",
      "port tcp/8332: bitcoin-core, bitcoin-knots",
      "port tcp/8333: bitcoin-core, bitcoin-knots"
    ])
  })

  it("keeps each app's writable data under its own data dir; others' data only read-only", () => {
    for (const alternatives of [false, true]) {
      const desired = desiredFor(everything(alternatives))
      const writers = new Map<string, string>()
      for (const app of desired.apps) {
        const root = `${Desired.defaultNodeConfig.dataRoot}/${app.id}/`
        for (const c of app.containers) {
          for (const m of c.spec.mounts) {
            if (!m.source.startsWith(root)) {
              assert.isTrue(m.readOnly, `${c.name} writes ${m.source}, outside ${root}`)
              continue
            }
            if (m.readOnly) continue
            const other = writers.get(m.source)
            assert.isTrue(
              other === undefined || other.startsWith(`${app.id}/`),
              `${m.source}: ${other}, ${c.name}`
            )
            writers.set(m.source, `${app.id}/${c.name}`)
          }
        }
      }
    }
  })

  it("binds every port to the loopback except the node's public services", () => {
    const published = containers.flatMap(({ c }) =>
      (c.ports ?? [])
        .filter((p) => p.public === true)
        .map((p) => `${c.name} ${p.protocol ?? "tcp"}/${p.host}`)
    )
    assert.deepStrictEqual(published.sort(), [
      "archy-fulcrum tcp/50001",
      "archy-wireguard udp/51820",
      "bitcoin-core tcp/8333",
      "bitcoin-knots tcp/8333",
      "electrumx tcp/50001",
      "lnd tcp/9735"
    ])
  })

  it("names containers archy-<app id>[-role]; bitcoind, lnd and electrumx keep their bare names", () => {
    const bare = new Set(["bitcoin-knots", "bitcoin-core", "lnd", "electrumx"])
    for (const { app, c } of containers) {
      if (bare.has(c.name)) assert.strictEqual(c.name, app.id)
      else assert.match(c.name, new RegExp(`^archy-${app.id}(-[a-z0-9]+)*$`), `${c.name} of ${app.id}`)
    }
  })

  it("points every config at host.archipelago, never host.containers.internal", () => {
    for (const source of sources) {
      for (const text of [source.text, ...(source.templates?.values() ?? [])]) {
        assert.notInclude(text, "host.containers.internal", source.file)
      }
    }
  })

  it("renders every config of every app, whole, once the secrets exist", () => {
    for (const alternatives of [false, true]) {
      for (const app of desiredFor(everything(alternatives)).apps) {
        assert.isUndefined(app.blocked, app.id)
        for (const file of app.files) {
          assert.isUndefined(file.renderError, `${file.path}: ${file.renderError}`)
          const text = Redacted.value(file.content!)
          assert.notInclude(text, "{{", file.path)
          if (file.path.endsWith(".json")) assert.doesNotThrow(() => JSON.parse(text), file.path)
          for (const name of file.secrets) {
            // A plain {{secret:NAME}} lands in the file as is (hashes and rpcauth are checked in
            // the renderer tests).
            if (file.template?.text.includes(`{{secret:${name}}}`) === true) {
              assert.include(text, Redacted.value(secretValues.get(name)!), file.path)
            }
          }
        }
      }
    }
  })

  it("points every app that talks to bitcoind at its configured RPC port", () => {
    const desired = Desired.make({
      catalog,
      node: Desired.defaultNodeConfig,
      selection: everything(false),
      secrets: secretValues,
      // Whichever bitcoind the selection has.
      settings: { "bitcoin-knots": { rpcPort: 8400 }, "bitcoin-core": { rpcPort: 8400 } }
    })
    const text = (suffix: string) =>
      Redacted.value(desired.apps.flatMap((a) => a.files).find((f) => f.path.endsWith(suffix))!.content!)
    assert.include(text("mempool-config.json"), '"PORT": 8400,')
    assert.include(text("btc-rpc-explorer.env"), "\nBTCEXP_BITCOIND_PORT=8400\n")
    assert.include(text("nbxplorer/Main/settings.config"), "\nbtc.rpc.url=http://host.archipelago:8400/\n")
    for (const f of desired.apps.flatMap((a) => a.files))
      assert.notInclude(Redacted.value(f.content!), ":8332", f.path)
  })

  it("gives secrets to containers only as mounted files, never in env, command or labels", () => {
    for (const alternatives of [false, true]) {
      for (const app of desiredFor(everything(alternatives)).apps) {
        for (const c of app.containers) {
          const exposed = JSON.stringify([c.spec.env, c.spec.command, c.spec.entrypoint, c.spec.labels])
          assert.notInclude(exposed, "SENTINEL", c.name)
          for (const [key, value] of c.spec.env) {
            if (/PASS|SECRET|TOKEN/i.test(key)) {
              assert.match(key, /_FILE$/, `${c.name}: ${key} must point at a mounted file`)
              assert.isTrue(
                c.spec.secretMounts.some((s) => s.target === value),
                `${c.name}: ${key}=${value}`
              )
            }
          }
        }
      }
    }
  })

  it("blocks installing Bitcoin Core next to Bitcoin Knots with the reason, and the same for the Electrum servers", () => {
    const desired = desiredFor({
      installed: ["bitcoin-knots", "bitcoin-core", "electrumx", "fulcrum"],
      stopped: []
    })
    assert.deepStrictEqual(
      desired.apps.map((a) => [a.id, a.blocked]),
      [
        ["bitcoin-core", "conflicts with installed app bitcoin-knots"],
        ["bitcoin-knots", "conflicts with installed app bitcoin-core"],
        ["electrumx", "conflicts with installed app fulcrum"],
        ["fulcrum", "conflicts with installed app electrumx"]
      ]
    )
  })
})
