import { assert, describe, it } from "@effect/vitest"
import * as ByteSize from "effect/ByteSize"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Path from "effect/Path"
import * as PlatformError from "effect/PlatformError"
import * as fc from "fast-check"
import * as Yaml from "yaml"
import {
  type Catalog,
  type CatalogApp,
  catalogFromSources,
  loadCatalog,
  type ManifestSource,
  orderByDependencies
} from "../src/Catalog.ts"
import { formatIssue, parseManifest } from "../src/Manifest.ts"
import { readCatalogSources, repoAppsDir } from "./catalogSources.ts"

type Doc = Record<string, unknown>

const IMAGE = "docker.io/library/nginx:1.27.5-alpine"
const fileOf = (id: string) => `/catalog/${id}/manifest.yml`

/** A valid manifest for `id`, one container named after it; `top` is merged in. */
const manifest = (id: string, top: Doc = {}, container: Doc = {}): Doc => ({
  id,
  name: id,
  version: "1.0.0",
  description: `The ${id} app`,
  category: "system",
  ...top,
  containers: [{ name: id, image: IMAGE, ...container }]
})

const source = (doc: Doc, dirName = String(doc.id)): ManifestSource => ({
  file: fileOf(dirName),
  dir: `/catalog/${dirName}`,
  dirName,
  text: Yaml.stringify(doc)
})

const dependsOn = (...apps: Array<string>): Doc => ({ dependencies: apps.map((app) => ({ app })) })

const ids = (catalog: Pick<Catalog, "apps">): Array<string> => catalog.apps.map((a) => a.manifest.id)

const assertNoIssues = (catalog: Catalog) =>
  assert.deepStrictEqual(catalog.issues.map(formatIssue), [], "expected no issues")

describe("catalogFromSources", () => {
  it("loads the repo's starter catalog with no issues, in dependency order", () => {
    const catalog = catalogFromSources(readCatalogSources(repoAppsDir))
    assertNoIssues(catalog)
    assert.deepStrictEqual(ids(catalog), [
      "bitcoin-core",
      "bitcoin-knots",
      "bitcoin-ui",
      "btcpay-server",
      "electrumx",
      "filebrowser",
      "fulcrum",
      "btc-rpc-explorer",
      "electrs-ui",
      "lnd",
      "lnbits",
      "lnd-ui",
      "mempool",
      "nostr-relay",
      "rtl",
      "tor",
      "wireguard"
    ])
    const knots = catalog.apps.find((a) => a.manifest.id === "bitcoin-knots")!
    assert.strictEqual(knots.file, `${repoAppsDir}bitcoin-knots/manifest.yml`)
    assert.strictEqual(knots.dir, `${repoAppsDir}bitcoin-knots`)
  })

  it("keeps loading the other apps when one manifest is bad, naming the bad file", () => {
    const catalog = catalogFromSources([
      source(manifest("alpha")),
      source(manifest("beta", {}, { privileged: true })),
      source(manifest("gamma")),
      { file: fileOf("delta"), dir: "/catalog/delta", dirName: "delta", text: "id: [unclosed\n" }
    ])
    assert.deepStrictEqual(ids(catalog), ["alpha", "gamma"])
    assert.deepStrictEqual(
      catalog.issues.filter((i) => i.file === fileOf("beta")).map((i) => i.path),
      ["containers[0].privileged"]
    )
    assert.isTrue(
      catalog.issues.some((i) => i.file === fileOf("delta") && i.message.startsWith("invalid YAML"))
    )
    assert.deepStrictEqual([...new Set(catalog.issues.map((i) => i.file))].sort(), [
      fileOf("beta"),
      fileOf("delta")
    ])
  })

  it("rejects a manifest whose id differs from its directory", () => {
    const catalog = catalogFromSources([source(manifest("alpha"), "alpha-app"), source(manifest("beta"))])
    assert.deepStrictEqual(ids(catalog), ["beta"])
    assert.deepStrictEqual(
      catalog.issues.map((i) => [i.file, i.path]),
      [[fileOf("alpha-app"), "id"]]
    )
  })

  it("gives a contested container name to the first app by id and rejects the second", () => {
    const alpha = source(manifest("alpha", {}, { name: "web" }))
    const beta = source(manifest("beta", {}, { name: "web" }))
    for (const sources of [
      [alpha, beta],
      [beta, alpha]
    ]) {
      const catalog = catalogFromSources(sources)
      assert.deepStrictEqual(ids(catalog), ["alpha"])
      assert.deepStrictEqual(catalog.issues, [
        {
          file: fileOf("beta"),
          path: "containers[0].name",
          message: `container name "web" is already used by app alpha`
        }
      ])
    }
  })

  it("gives a contested host port to the first app by id and rejects the second", () => {
    const alpha = source(manifest("alpha", {}, { ports: [{ host: 8080, container: 80 }] }))
    const beta = source(
      manifest(
        "beta",
        {},
        {
          ports: [
            { host: 9090, container: 90 },
            { host: 8080, container: 80 }
          ]
        }
      )
    )
    const catalog = catalogFromSources([beta, alpha])
    assert.deepStrictEqual(ids(catalog), ["alpha"])
    assert.deepStrictEqual(catalog.issues, [
      {
        file: fileOf("beta"),
        path: "containers[0].ports[1].host",
        message: "host port tcp/8080 is already used by app alpha"
      }
    ])
  })

  it("lets apps that conflict with each other claim the same ports and container names", () => {
    const knots = manifest(
      "knots",
      { conflicts: ["core"] },
      { name: "bitcoind", ports: [{ host: 8332, container: 8332 }] }
    )
    const core = manifest("core", {}, { name: "bitcoind", ports: [{ host: 8332, container: 8332 }] })
    const other = manifest("other", {}, { ports: [{ host: 8332, container: 8332 }] })
    const catalog = catalogFromSources([source(other), source(knots), source(core)])
    // conflicts is symmetric: core does not name knots, knots names core.
    assert.deepStrictEqual(ids(catalog), ["core", "knots"])
    assert.deepStrictEqual(catalog.issues, [
      {
        file: fileOf("other"),
        path: "containers[0].ports[0].host",
        message: "host port tcp/8332 is already used by app core"
      }
    ])
  })

  it("reports a template that does not exist next to the manifest", () => {
    const doc = manifest("alpha", { files: [{ path: "conf", template: "alpha.conf", consumers: ["alpha"] }] })
    const catalog = catalogFromSources([source(doc)])
    assert.deepStrictEqual(ids(catalog), [])
    assert.deepStrictEqual(catalog.issues, [
      {
        file: fileOf("alpha"),
        path: "files[0].template",
        message: 'no template file "alpha.conf" next to the manifest'
      }
    ])
  })

  it("reports each unknown placeholder of a template with the file and line, and leaves only that app out", () => {
    const doc = manifest("alpha", {
      secrets: ["alpha-password"],
      files: [{ path: "conf", template: "alpha.conf", params: { port: 80 }, consumers: ["alpha"] }]
    })
    const templates = new Map([
      ["alpha.conf", "port={{param:port}}\npass={{secret:alpha-pasword}}\nx={{nope}}\n"]
    ])
    const catalog = catalogFromSources([{ ...source(doc), templates }, source(manifest("beta"))])
    assert.deepStrictEqual(ids(catalog), ["beta"])
    assert.deepStrictEqual(
      catalog.issues.map((i) => [i.file, i.path, i.message]),
      [
        [
          fileOf("alpha"),
          "files[0].template",
          'alpha.conf, line 2: placeholder {{secret:alpha-pasword}} names secret "alpha-pasword", not declared in the app\'s secrets'
        ],
        [
          fileOf("alpha"),
          "files[0].template",
          "alpha.conf, line 3: placeholder {{nope}} is unknown (expected {{secret:NAME}}, {{param:NAME}} or {{rpcauth:USER:SECRET}}, optionally followed by |json or |sha256)"
        ]
      ]
    )
  })

  it("keeps the text of the templates an app's files name", () => {
    const doc = manifest("alpha", { files: [{ path: "conf", template: "alpha.conf", consumers: ["alpha"] }] })
    const templates = new Map([
      ["alpha.conf", "static\n"],
      ["README", "not a template of any file"]
    ])
    const catalog = catalogFromSources([{ ...source(doc), templates }])
    assert.deepStrictEqual([...catalog.apps[0]!.templates], [["alpha.conf", "static\n"]])
  })

  // An app left out of the catalog should not keep the names and ports it declared.
  it("does not let an app rejected for a clash keep its other claims", () => {
    const catalog = catalogFromSources([
      source(manifest("alpha", {}, { name: "web" })),
      source(manifest("beta", {}, { name: "web", ports: [{ host: 9000, container: 90 }] })),
      source(manifest("gamma", {}, { ports: [{ host: 9000, container: 90 }] }))
    ])
    assert.deepStrictEqual(ids(catalog), ["alpha", "gamma"])
    assert.deepStrictEqual(
      catalog.issues.map((i) => i.file),
      [fileOf("beta")]
    )
  })

  it("names the other container when one app claims a host port twice", () => {
    const doc = manifest("alpha")
    doc.containers = [
      { name: "web", image: IMAGE, ports: [{ host: 9000, container: 80 }] },
      { name: "api", image: IMAGE, ports: [{ host: 9000, container: 81 }] }
    ]
    const catalog = catalogFromSources([source(doc)])
    assert.deepStrictEqual(ids(catalog), [])
    assert.deepStrictEqual(catalog.issues, [
      {
        file: fileOf("alpha"),
        path: "containers[1].ports[0].host",
        message: "host port tcp/9000 is already used by container web in this app"
      }
    ])
  })

  it("lets tcp and udp share a host port number", () => {
    const catalog = catalogFromSources([
      source(manifest("alpha", {}, { ports: [{ host: 5353, container: 53 }] })),
      source(manifest("beta", {}, { ports: [{ host: 5353, container: 53, protocol: "udp" }] }))
    ])
    assertNoIssues(catalog)
    assert.deepStrictEqual(ids(catalog), ["alpha", "beta"])
  })

  it("rejects an app whose dependency no app is or provides, and the apps behind it", () => {
    const catalog = catalogFromSources([
      source(manifest("alpha")),
      source(manifest("lnd", dependsOn("alpha", "bitcoind"))),
      source(manifest("lnd-ui", dependsOn("lnd")))
    ])
    assert.deepStrictEqual(ids(catalog), ["alpha"])
    assert.deepStrictEqual(catalog.issues, [
      { file: fileOf("lnd"), path: "dependencies[1].app", message: `no valid app is or provides "bitcoind"` },
      { file: fileOf("lnd-ui"), path: "dependencies[0].app", message: `no valid app is or provides "lnd"` }
    ])
  })

  it("rejects an app depending on an app whose manifest is bad", () => {
    const catalog = catalogFromSources([
      source(manifest("bitcoin-knots", { provides: ["bitcoind"] }, { privileged: true })),
      source(manifest("lnd", dependsOn("bitcoind")))
    ])
    assert.deepStrictEqual(ids(catalog), [])
    assert.deepStrictEqual(
      catalog.issues.map((i) => [i.file, i.path]),
      [
        [fileOf("bitcoin-knots"), "containers[0].privileged"],
        [fileOf("lnd"), "dependencies[0].app"]
      ]
    )
  })

  it("satisfies a dependency with an app that provides it", () => {
    const catalog = catalogFromSources([
      source(manifest("lnd", dependsOn("bitcoind"))),
      source(manifest("bitcoin-knots", { provides: ["bitcoind"] }))
    ])
    assertNoIssues(catalog)
    assert.deepStrictEqual(ids(catalog), ["bitcoin-knots", "lnd"])
  })

  it("rejects a file consumer that is no container in the catalog", () => {
    const files = [{ path: "x.conf", renderer: "bitcoin-conf", consumers: ["alpha", "ghost"] }]
    const catalog = catalogFromSources([
      source(manifest("alpha", { secrets: ["bitcoin-rpc-password"], files })),
      source(manifest("beta"))
    ])
    assert.deepStrictEqual(ids(catalog), ["beta"])
    assert.deepStrictEqual(catalog.issues, [
      { file: fileOf("alpha"), path: "files[0].consumers[1]", message: `no container "ghost" in the catalog` }
    ])
  })

  it("accepts a file consumer in another app", () => {
    const files = [{ path: "x.conf", renderer: "bitcoin-conf", consumers: ["beta"] }]
    const catalog = catalogFromSources([
      source(manifest("alpha", { secrets: ["bitcoin-rpc-password"], files })),
      source(manifest("beta"))
    ])
    assertNoIssues(catalog)
  })

  it("reports a cycle once, leaves its apps out, and reports apps behind it", () => {
    const catalog = catalogFromSources([
      source(manifest("c", dependsOn("a"))),
      source(manifest("b", dependsOn("a"))),
      source(manifest("a", dependsOn("b"))),
      source(manifest("d"))
    ])
    assert.deepStrictEqual(ids(catalog), ["d"])
    assert.deepStrictEqual(catalog.issues, [
      { file: fileOf("a"), path: "dependencies", message: "dependency cycle: a -> b -> a" },
      { file: fileOf("c"), path: "dependencies", message: "depends on an app that is on a dependency cycle" }
    ])
  })

  it("reports a longer cycle through a provided capability", () => {
    const catalog = catalogFromSources([
      source(manifest("a", { ...dependsOn("svc-c") })),
      source(manifest("b", { ...dependsOn("a") })),
      source(manifest("c", { provides: ["svc-c"], ...dependsOn("b") })),
      source(manifest("x", dependsOn("c", "z"))),
      source(manifest("z"))
    ])
    assert.deepStrictEqual(ids(catalog), ["z"])
    assert.deepStrictEqual(catalog.issues, [
      { file: fileOf("a"), path: "dependencies", message: "dependency cycle: a -> c -> b -> a" },
      { file: fileOf("x"), path: "dependencies", message: "depends on an app that is on a dependency cycle" }
    ])
  })

  const ordered = [
    source(manifest("zeta")),
    source(manifest("lnd-ui", dependsOn("lnd"))),
    source(manifest("electrs-ui", dependsOn("electrumx"))),
    source(manifest("lnd", dependsOn("bitcoind"))),
    source(manifest("electrumx", dependsOn("bitcoind"))),
    source(manifest("bitcoin-ui", dependsOn("bitcoind"))),
    source(manifest("bitcoin-knots", { provides: ["bitcoind"] })),
    source(manifest("aaa"))
  ]
  const expectedOrder = [
    "aaa",
    "bitcoin-knots",
    "bitcoin-ui",
    "electrumx",
    "electrs-ui",
    "lnd",
    "lnd-ui",
    "zeta"
  ]

  it("orders apps after their dependencies, ties by id", () => {
    const catalog = catalogFromSources(ordered)
    assertNoIssues(catalog)
    assert.deepStrictEqual(ids(catalog), expectedOrder)
  })

  it("gives the same apps and issues whatever the input order", () => {
    const withProblems = [
      ...ordered,
      source(manifest("web-a", {}, { name: "web" })),
      source(manifest("web-b", {}, { name: "web" })),
      source(manifest("orphan", dependsOn("nothing")))
    ]
    const reference = catalogFromSources(withProblems)
    assert.strictEqual(reference.issues.length, 2)
    fc.assert(
      fc.property(
        fc.shuffledSubarray(withProblems, { minLength: withProblems.length, maxLength: withProblems.length }),
        (shuffled) => {
          const catalog = catalogFromSources(shuffled)
          assert.deepStrictEqual(ids(catalog), ids(reference))
          assert.deepStrictEqual(catalog.issues, reference.issues)
        }
      ),
      { numRuns: 50 }
    )
  })
})

describe("orderByDependencies", () => {
  const app = (id: string, ...deps: Array<string>): CatalogApp => {
    const parsed = parseManifest(fileOf(id), Yaml.stringify(manifest(id, dependsOn(...deps))), id)
    return "manifest" in parsed
      ? { manifest: parsed.manifest, file: fileOf(id), dir: `/catalog/${id}`, templates: new Map() }
      : assert.fail(parsed.issues.map(formatIssue).join("; "))
  }

  it("returns every app when there is no cycle", () => {
    const result = orderByDependencies([app("b", "a"), app("c"), app("a")])
    assert.deepStrictEqual(ids(result), ["a", "b", "c"])
    assert.deepStrictEqual(result.cycles, [])
  })

  it("returns each cycle once, with its apps in walk order", () => {
    const result = orderByDependencies([app("a", "b"), app("b", "a"), app("c", "a"), app("d")])
    assert.deepStrictEqual(ids(result), ["d"])
    assert.deepStrictEqual(
      result.cycles.map((cycle) => cycle.map((a) => a.manifest.id)),
      [["a", "b"]]
    )
  })
})

/** An in-memory tree: a string is a file's text, null is a directory. */
const memoryCatalog = (tree: Record<string, string | null>) => {
  const notFound = (method: string, path: string) =>
    PlatformError.systemError({ _tag: "NotFound", module: "FileSystem", method, pathOrDescriptor: path })
  const info = (type: FileSystem.File.Type): FileSystem.File.Info => ({
    type,
    mtime: Option.none(),
    atime: Option.none(),
    birthtime: Option.none(),
    dev: 0n,
    ino: Option.none(),
    mode: 0o755,
    nlink: Option.none(),
    uid: Option.none(),
    gid: Option.none(),
    rdev: Option.none(),
    size: ByteSize.bytes(0),
    blksize: Option.none(),
    blocks: Option.none()
  })
  return Layer.mergeAll(
    Path.layer,
    FileSystem.layerNoop({
      readDirectory: (path) =>
        tree[path] === null
          ? Effect.succeed(
              Object.keys(tree)
                .filter((p) => p.startsWith(`${path}/`) && !p.slice(path.length + 1).includes("/"))
                .map((p) => p.slice(path.length + 1))
                .reverse()
            )
          : Effect.fail(notFound("readDirectory", path)),
      stat: (path) => {
        const entry = tree[path]
        return entry === undefined
          ? Effect.fail(notFound("stat", path))
          : Effect.succeed(info(entry === null ? "Directory" : "File"))
      },
      readFileString: (path) => {
        const entry = tree[path]
        return typeof entry === "string"
          ? Effect.succeed(entry)
          : Effect.fail(notFound("readFileString", path))
      }
    })
  )
}

describe("loadCatalog", () => {
  it.effect("loads each directory's manifest.yml and reports a directory without one", () =>
    Effect.gen(function* () {
      const catalog = yield* loadCatalog("/catalog").pipe(
        Effect.provide(
          memoryCatalog({
            "/catalog": null,
            "/catalog/alpha": null,
            "/catalog/alpha/manifest.yml": Yaml.stringify(manifest("alpha")),
            "/catalog/beta": null,
            "/catalog/beta/manifest.yml": Yaml.stringify(manifest("beta", dependsOn("alpha"))),
            "/catalog/empty": null,
            "/catalog/empty/README.md": "no manifest here",
            "/catalog/.git": null,
            "/catalog/README.md": "# catalog"
          })
        )
      )
      assert.deepStrictEqual(ids(catalog), ["alpha", "beta"])
      assert.strictEqual(catalog.apps[0]!.file, "/catalog/alpha/manifest.yml")
      assert.strictEqual(catalog.apps[0]!.dir, "/catalog/alpha")
      assert.deepStrictEqual(catalog.issues, [
        {
          file: "/catalog/empty/manifest.yml",
          path: "",
          message: "cannot read manifest.yml (every app directory needs one)"
        }
      ])
    })
  )

  it.effect("reports a bad manifest in its own file and keeps the rest", () =>
    Effect.gen(function* () {
      const catalog = yield* loadCatalog("/catalog").pipe(
        Effect.provide(
          memoryCatalog({
            "/catalog": null,
            "/catalog/alpha": null,
            "/catalog/alpha/manifest.yml": Yaml.stringify(manifest("alpha", { homepage: "x" })),
            "/catalog/beta": null,
            "/catalog/beta/manifest.yml": Yaml.stringify(manifest("beta"))
          })
        )
      )
      assert.deepStrictEqual(ids(catalog), ["beta"])
      assert.deepStrictEqual(catalog.issues, [
        { file: "/catalog/alpha/manifest.yml", path: "homepage", message: "unknown key" }
      ])
    })
  )

  it.effect("fails when the catalog directory cannot be read", () =>
    Effect.gen(function* () {
      const error = yield* loadCatalog("/nowhere").pipe(Effect.provide(memoryCatalog({})), Effect.flip)
      assert.instanceOf(error, PlatformError.PlatformError)
    })
  )
})
