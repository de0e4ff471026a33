// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${...} setting references are what these tests are about

import { assert, describe, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import * as Yaml from "yaml"
import { type Catalog, catalogFromSources } from "../src/Catalog.ts"
import { configure } from "../src/Configure.ts"
import * as Desired from "../src/Desired.ts"
import { formatIssue, type ManifestIssue, parseManifest } from "../src/Manifest.ts"
import * as Settings from "../src/Settings.ts"
import { readCatalogSources, repoAppsDir } from "./catalogSources.ts"

type Doc = Record<string, unknown>
const FILE = "/catalog/demo/manifest.yml"
const IMAGE = "docker.io/library/nginx:1.27.5-alpine"

const demo = (top: Doc = {}, container: Doc = {}): Doc => ({
  id: "demo",
  name: "Demo",
  version: "1.0.0",
  description: "A demo app",
  category: "system",
  ...top,
  containers: [{ name: "demo", image: IMAGE, ...container }]
})

const issuesOf = (doc: Doc): ReadonlyArray<ManifestIssue> => {
  const result = parseManifest(FILE, Yaml.stringify(doc), String(doc.id))
  return "issues" in result ? result.issues : []
}

const assertIssue = (doc: Doc, path: string, message: RegExp) => {
  const issues = issuesOf(doc)
  assert.isTrue(
    issues.some((i) => i.file === FILE && i.path === path && message.test(i.message)),
    `expected an issue at ${path} matching ${message}, got: ${issues.map(formatIssue).join("; ") || "none"}`
  )
}

const decls = {
  network: {
    type: "enum",
    values: ["mainnet", "signet"],
    default: "mainnet",
    description: "The chain"
  },
  prune: { type: "int", min: 0, unit: "MiB", default: 0, description: "Pruning" },
  txindex: { type: "bool", default: true, description: "Index" },
  alias: { type: "string", maxLength: 8, pattern: "[a-z]+", default: "node", description: "Name" }
} as const satisfies Record<string, Settings.SettingDecl>

describe("Settings values", () => {
  it("parses typed JSON and command-line text against the declaration", () => {
    assert.deepStrictEqual(Settings.parseValue(decls.prune, 10000), { value: 10000 })
    assert.deepStrictEqual(Settings.parseValue(decls.prune, "10000"), { value: 10000 })
    assert.deepStrictEqual(Settings.parseValue(decls.txindex, "off"), { value: false })
    assert.deepStrictEqual(Settings.parseValue(decls.txindex, "true"), { value: true })
    assert.deepStrictEqual(Settings.parseValue(decls.network, "signet"), { value: "signet" })
    assert.deepStrictEqual(Settings.parseValue(decls.alias, "abc"), { value: "abc" })
  })

  it("refuses what does not fit, saying what was expected", () => {
    assert.deepStrictEqual(Settings.parseValue(decls.prune, -1), {
      error: "expected an integer >= 0 (MiB), got -1"
    })
    assert.deepStrictEqual(Settings.parseValue(decls.prune, "1.5"), {
      error: 'expected an integer >= 0 (MiB), got "1.5"'
    })
    assert.deepStrictEqual(Settings.parseValue(decls.txindex, "maybe"), {
      error: 'expected true or false, got "maybe"'
    })
    assert.deepStrictEqual(Settings.parseValue(decls.network, "testnet"), {
      error: 'expected one of mainnet, signet, got "testnet"'
    })
    assert.match((Settings.parseValue(decls.alias, "ABC") as { error: string }).error, /matching \[a-z\]\+/)
    assert.match((Settings.parseValue(decls.alias, "abcdefghi") as { error: string }).error, /at most 8/)
    assert.match((Settings.parseValue(decls.alias, "a\nb") as { error: string }).error, /one line/)
  })

  it("overlays the operator's choices on the defaults, and flags stored values that no longer fit", () => {
    const e = Settings.effective(decls, { prune: 550, network: "testnet" })
    assert.deepStrictEqual(e.values, { network: "mainnet", prune: 550, txindex: true, alias: "node" })
    assert.deepStrictEqual(e.chosen, ["prune"])
    assert.strictEqual(e.problems.length, 1)
    assert.match(e.problems[0]!, /setting network: the stored value no longer fits/)
  })

  it("checks rules: when every condition holds, the requirements must too", () => {
    const rules: ReadonlyArray<Settings.SettingRule> = [
      { when: { txindex: true }, require: { prune: 0 }, reason: "no txindex when pruned" },
      { when: { prune: { min: 1 } }, require: { prune: { min: 550 } }, reason: "at least 550" }
    ]
    assert.deepStrictEqual(Settings.brokenRules(rules, { txindex: false, prune: 0 }), [])
    assert.deepStrictEqual(Settings.brokenRules(rules, { txindex: false, prune: 600 }), [])
    assert.deepStrictEqual(Settings.brokenRules(rules, { txindex: true, prune: 600 }), [
      "no txindex when pruned: txindex=true needs prune=0 (it is 600)"
    ])
    assert.deepStrictEqual(Settings.brokenRules(rules, { txindex: false, prune: 100 }), [
      "at least 550: prune >= 1 needs prune >= 550 (it is 100)"
    ])
  })

  it("resolves references: a whole value keeps its type, inside text it is spliced in", () => {
    const lookup: Settings.Lookup = (ref) =>
      ref.dependency === undefined
        ? ({ prune: 550, network: "signet" } as Record<string, Settings.SettingValue>)[ref.key]
        : ref.dependency === "bitcoind" && ref.key === "rpcPort"
          ? 38332
          : undefined
    assert.strictEqual(Settings.resolve("${settings.prune}", lookup), 550)
    assert.strictEqual(Settings.resolve("${bitcoind.settings.rpcPort}", lookup), 38332)
    assert.strictEqual(
      Settings.resolve('export URL="http://h:${bitcoind.settings.rpcPort}/"; echo ${HOME}', lookup),
      'export URL="http://h:38332/"; echo ${HOME}'
    )
    assert.strictEqual(Settings.resolve("net-${settings.network}", lookup), "net-signet")
    assert.strictEqual(Settings.resolve(7, lookup), 7)
  })
})

describe("Manifest settings", () => {
  it("decodes declarations, rules and references", () => {
    const doc = demo(
      {
        settings: decls,
        settingRules: [{ when: { txindex: true }, require: { prune: 0 }, reason: "no txindex when pruned" }],
        secrets: ["bitcoin-rpc-password"],
        files: [
          {
            path: "bitcoin.conf",
            renderer: "bitcoin-conf",
            params: { network: "${settings.network}", prune: "${settings.prune}" },
            consumers: ["demo"]
          }
        ]
      },
      { env: { NET: "${settings.network}" }, command: ["sh", "-c", "echo ${HOME} ${settings.alias}"] }
    )
    assert.deepStrictEqual(issuesOf(doc), [])
  })

  it("a reference to an undeclared setting names the file and the path", () => {
    assertIssue(
      demo({ settings: decls }, { env: { NET: "${settings.chain}" } }),
      "containers[0].env.NET",
      /\$\{settings\.chain\} names setting "chain", not declared in settings/
    )
    assertIssue(
      demo({
        secrets: ["bitcoin-rpc-password"],
        files: [
          {
            path: "b.conf",
            renderer: "bitcoin-conf",
            params: { dbcache: "${settings.dbcache}" },
            consumers: ["demo"]
          }
        ]
      }),
      "files[0].params.dbcache",
      /names setting "dbcache", not declared/
    )
  })

  it("refuses malformed references, and shell syntax in params", () => {
    assertIssue(
      demo({ settings: decls }, { command: ["echo", "${setting.network}"] }),
      "containers[0].command[1]",
      /is not a setting reference/
    )
    assertIssue(
      demo({
        settings: decls,
        secrets: ["bitcoin-rpc-password"],
        files: [
          { path: "b.conf", renderer: "bitcoin-conf", params: { network: "${NET}" }, consumers: ["demo"] }
        ]
      }),
      "files[0].params.network",
      /is not a setting reference/
    )
  })

  it("a dependency's setting may be named only through a declared dependency", () => {
    assertIssue(
      demo({}, { env: { NET: "${bitcoind.settings.network}" } }),
      "containers[0].env.NET",
      /"bitcoind", which is not one of this app's dependencies/
    )
  })

  it("ports may come from an int setting within 1..65535 only", () => {
    const rpc = { type: "int", min: 1024, max: 65535, default: 8332, description: "RPC port" }
    assert.deepStrictEqual(
      issuesOf(
        demo(
          { settings: { rpcPort: rpc } },
          { ports: [{ host: "${settings.rpcPort}", container: "${settings.rpcPort}" }] }
        )
      ),
      []
    )
    assertIssue(
      demo({ settings: decls }, { ports: [{ host: "${settings.prune}", container: 80 }] }),
      "containers[0].ports[0].host",
      /must be an int setting with min >= 1 and max <= 65535/
    )
    assertIssue(
      demo({ settings: decls }, { ports: [{ host: "${settings.network}x", container: 80 }] }),
      "containers[0].ports[0].host",
      /port number or a reference to an int setting/
    )
  })

  it("defaults must fit their own declaration and the rules", () => {
    assertIssue(
      demo({ settings: { network: { ...decls.network, default: "regtest" } } }),
      "settings.network.default",
      /expected one of mainnet, signet, got "regtest"/
    )
    assertIssue(
      demo({ settings: { prune: { ...decls.prune, min: 5, max: 1 } } }),
      "settings.prune",
      /min 5 is above max 1/
    )
    assertIssue(
      demo({
        settings: decls,
        settingRules: [{ when: { txindex: true }, require: { prune: 550 }, reason: "r" }]
      }),
      "settingRules",
      /the defaults break a rule: r: txindex=true needs prune=550 \(it is 0\)/
    )
    assertIssue(
      demo({ settings: decls, settingRules: [{ when: { nope: true }, require: { prune: 0 }, reason: "r" }] }),
      "settingRules[0].when.nope",
      /setting "nope" is not declared/
    )
    assertIssue(
      demo({ settings: { x: { type: "float", default: 1, description: "d" } } }),
      "settings.x",
      /Expected a setting: \{type: enum \(with values\), int/
    )
  })
})

// --- the repo's catalog, end to end through Desired ---------------------------------------------

const repoCatalog = (): Catalog => catalogFromSources(readCatalogSources(repoAppsDir))

const secrets = new Map([["bitcoin-rpc-password", Redacted.make("a-test-rpc-password-0123456789")]])

const desiredWith = (catalog: Catalog, settings: Settings.SettingsChoices) =>
  Desired.make({
    catalog,
    node: Desired.defaultNodeConfig,
    selection: Desired.defaultSelection(catalog),
    secrets,
    settings
  })

const fileText = (d: Desired.Desired, app: string, suffix: string): string => {
  const file = d.apps.find((a) => a.id === app)?.files.find((f) => f.path.endsWith(suffix))
  assert.isDefined(file?.content, `${app} ${suffix} rendered (${file?.renderError ?? "no file"})`)
  return Redacted.value(file!.content!)
}
const container = (d: Desired.Desired, name: string) =>
  d.apps.flatMap((a) => a.containers).find((c) => c.name === name)!

describe("settings flow into Desired", () => {
  const catalog = repoCatalog()

  it("the repo's catalog loads with its settings", () => {
    assert.deepStrictEqual(catalog.issues.map(formatIssue), [])
  })

  it("defaults render what the manifests rendered before settings existed", () => {
    const d = desiredWith(catalog, {})
    const conf = fileText(d, "bitcoin-knots", "bitcoin.conf")
    for (const line of [
      "txindex=1",
      "prune=0",
      "dbcache=450",
      "rpcport=8332",
      "zmqpubrawblock=tcp://0.0.0.0:28332"
    ])
      assert.include(conf, `\n${line}\n`)
    assert.notInclude(conf, "testnet")
    const lnd = fileText(d, "lnd", "lnd.conf")
    assert.include(lnd, "\nbitcoin.mainnet=1\n")
    assert.include(lnd, "\nbitcoind.rpchost=host.archipelago:8332\n")
    assert.include(lnd, "\nalias=archipelago\n")
    assert.include(lnd, "\ncolor=#3399ff\n")
    const electrumx = container(d, "electrumx")
    assert.deepStrictEqual(
      electrumx.spec.env.filter(([k]) => ["COIN", "NET", "CACHE_MB"].includes(k)),
      [
        ["CACHE_MB", "400"],
        ["COIN", "Bitcoin"],
        ["NET", "mainnet"]
      ]
    )
    assert.include(electrumx.spec.command![0]!, "@host.archipelago:8332/")
  })

  it("one network choice reaches bitcoind, lnd, ElectrumX and the UI proxy consistently", () => {
    const before = desiredWith(catalog, {})
    const d = desiredWith(catalog, { "bitcoin-knots": { network: "signet", rpcPort: 38332 } })
    const conf = fileText(d, "bitcoin-knots", "bitcoin.conf")
    assert.include(conf, "\nsignet=1\n")
    assert.include(conf, "\n[signet]\n")
    assert.include(conf, "\nrpcport=38332\n")
    const lnd = fileText(d, "lnd", "lnd.conf")
    assert.include(lnd, "\nbitcoin.signet=1\n")
    assert.include(lnd, "\nbitcoind.rpchost=host.archipelago:38332\n")
    assert.include(fileText(d, "bitcoin-ui", "nginx.conf"), "proxy_pass http://host.archipelago:38332/;")
    const electrumx = container(d, "electrumx")
    assert.deepStrictEqual(
      electrumx.spec.env.find(([k]) => k === "NET"),
      ["NET", "signet"]
    )
    assert.include(electrumx.spec.command![0]!, "@host.archipelago:38332/")
    // The RPC port mapping follows, so bitcoind's spec (and its hash) changes; ElectrumX's too.
    const knots = container(d, "bitcoin-knots")
    assert.isTrue(knots.spec.ports.some((p) => p.host === 38332 && p.container === 38332))
    assert.notStrictEqual(knots.specHash, container(before, "bitcoin-knots").specHash)
    assert.notStrictEqual(electrumx.specHash, container(before, "electrumx").specHash)
    // lnd's spec is unchanged: only its rendered file changes, which restarts it.
    assert.strictEqual(container(d, "lnd").specHash, container(before, "lnd").specHash)
    assert.notStrictEqual(container(d, "lnd").filesHash, container(before, "lnd").filesHash)
  })

  it("a setting only its own file reads changes that file alone", () => {
    const before = desiredWith(catalog, {})
    const d = desiredWith(catalog, { "bitcoin-knots": { dbcache: 4000 } })
    assert.include(fileText(d, "bitcoin-knots", "bitcoin.conf"), "\ndbcache=4000\n")
    const changed = d.apps
      .flatMap((a) => a.containers)
      .filter((c) => {
        const old = container(before, c.name)
        return old.specHash !== c.specHash || old.filesHash !== c.filesHash
      })
      .map((c) => c.name)
    assert.deepStrictEqual(changed, ["bitcoin-knots"])
  })

  it("lnd without bitcoind's ZMQ polls RPC instead", () => {
    const lnd = fileText(desiredWith(catalog, { "bitcoin-knots": { zmq: false } }), "lnd", "lnd.conf")
    assert.include(lnd, "\nbitcoind.rpcpolling=true\n")
    assert.notInclude(lnd, "zmqpubrawblock")
  })

  it("stored choices that break the app's rules block it (its containers are left alone)", () => {
    const d = desiredWith(catalog, { "bitcoin-knots": { prune: 1000 } })
    const knots = d.apps.find((a) => a.id === "bitcoin-knots")!
    assert.match(knots.blocked ?? "", /bitcoind refuses txindex on a pruned node/)
    assert.match(knots.blocked ?? "", /archy configure bitcoin-knots/)
  })
})

describe("configure", () => {
  const catalog = repoCatalog()
  const base = {
    catalog,
    selection: Desired.defaultSelection(catalog),
    node: Desired.defaultNodeConfig,
    choices: {}
  }

  it("accepts a valid change and says which settings changed", () => {
    const r = configure({ ...base, app: "bitcoin-knots", changes: { prune: "10000", txindex: "false" } })
    assert.deepStrictEqual(r, {
      _tag: "Accepted",
      choices: { "bitcoin-knots": { prune: 10000, txindex: false } },
      changed: ["prune", "txindex"]
    })
  })

  it("refuses a cross-setting clash with the reason, and unknown keys and bad values by name", () => {
    assert.deepStrictEqual(configure({ ...base, app: "bitcoin-knots", changes: { prune: 10000 } }), {
      _tag: "Refused",
      reasons: ["bitcoind refuses txindex on a pruned node: txindex=true needs prune=0 (it is 10000)"]
    })
    const r = configure({ ...base, app: "bitcoin-knots", changes: { colour: "red", dbcache: 1 } })
    assert.deepStrictEqual(r, {
      _tag: "Refused",
      reasons: [
        'bitcoin-knots has no setting "colour" (its settings: network, prune, txindex, zmq, rpcPort, dbcache)',
        "dbcache: expected an integer from 4 to 65536 (MiB), got 1"
      ]
    })
    assert.deepStrictEqual(configure({ ...base, app: "nope", changes: {} }), {
      _tag: "Refused",
      reasons: ['no app "nope" in the catalog']
    })
  })

  it("refuses a value a renderer cannot honour, naming the file", () => {
    const r = configure({ ...base, app: "lnd", changes: { alias: "ünïcödé-ünïcödé-ünïcödé-xx" } })
    assert.strictEqual(r._tag, "Refused")
    assert.match(
      (r as { reasons: ReadonlyArray<string> }).reasons[0]!,
      /lnd's lnd.conf could not be rendered: .*alias/
    )
  })

  it("refuses a port that another installed app already uses", () => {
    const r = configure({ ...base, app: "bitcoin-knots", changes: { rpcPort: 8080 } })
    assert.deepStrictEqual(r, {
      _tag: "Refused",
      reasons: ["host port tcp/8080 would be used by both bitcoin-knots and lnd"]
    })
  })

  it("null resets to the default; an unchanged value changes nothing", () => {
    const choices = { "bitcoin-knots": { dbcache: 1000 } }
    assert.deepStrictEqual(
      configure({ ...base, choices, app: "bitcoin-knots", changes: { dbcache: null } }),
      {
        _tag: "Accepted",
        choices: { "bitcoin-knots": {} },
        changed: ["dbcache"]
      }
    )
    assert.deepStrictEqual(
      configure({ ...base, choices, app: "bitcoin-knots", changes: { dbcache: 1000 } }),
      {
        _tag: "Accepted",
        choices,
        changed: []
      }
    )
  })
})
