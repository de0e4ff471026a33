import { readdirSync, readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import * as Yaml from "yaml"
import {
  type AppManifest,
  formatIssue,
  type ManifestIssue,
  type ManifestPolicy,
  parseManifest
} from "../src/Manifest.ts"

const FILE = "/catalog/demo/manifest.yml"
const appsDir = new URL("../../../apps/", import.meta.url)

type Doc = Record<string, unknown>

/** A small valid manifest; `container` and `top` are merged into it. */
const demo = (container: Doc = {}, top: Doc = {}): Doc => ({
  id: "demo",
  name: "Demo",
  version: "1.0.0",
  description: "A demo app",
  category: "system",
  ...top,
  containers: [{ name: "demo", image: "docker.io/library/nginx:1.27.5-alpine", ...container }]
})

const parseDoc = (doc: Doc, dirName = "demo", policy?: ManifestPolicy) =>
  parseManifest(FILE, Yaml.stringify(doc), dirName, policy)

const manifestOf = (result: ReturnType<typeof parseManifest>): AppManifest =>
  "manifest" in result
    ? result.manifest
    : assert.fail(`expected a valid manifest, got ${result.issues.map(formatIssue).join("; ")}`)

const issuesOf = (result: ReturnType<typeof parseManifest>): ReadonlyArray<ManifestIssue> =>
  "issues" in result ? result.issues : assert.fail("expected issues, got a valid manifest")

/** Asserts exactly one issue, in FILE, at `path`, whose message matches `message`. */
const assertOnlyIssue = (
  result: ReturnType<typeof parseManifest>,
  path: string,
  message: RegExp | string
): ManifestIssue => {
  const issues = issuesOf(result)
  assert.strictEqual(issues.length, 1, issues.map(formatIssue).join("; "))
  const issue = issues[0]!
  assert.strictEqual(issue.file, FILE)
  assert.strictEqual(issue.path, path)
  if (typeof message === "string") assert.strictEqual(issue.message, message)
  else assert.match(issue.message, message)
  return issue
}

describe("parseManifest: valid manifests", () => {
  it("decodes every app of apps/ with no issues", () => {
    const dirs = readdirSync(appsDir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort()
    assert.isAtLeast(dirs.length, 17)
    for (const dir of dirs) {
      const file = new URL(`${dir}/manifest.yml`, appsDir)
      const manifest = manifestOf(parseManifest(file.pathname, readFileSync(file, "utf8"), dir))
      assert.strictEqual(manifest.id, dir)
      assert.isAbove(manifest.containers.length, 0)
    }
  })

  it("keeps the decoded values of the starter bitcoin node", () => {
    const file = new URL("bitcoin-knots/manifest.yml", appsDir)
    const m = manifestOf(parseManifest(file.pathname, readFileSync(file, "utf8"), "bitcoin-knots"))
    assert.deepStrictEqual(m.provides, ["bitcoind"])
    assert.deepStrictEqual(m.secrets, ["bitcoin-rpc-password"])
    assert.strictEqual(m.files?.[0]?.renderer, "bitcoin-conf")
    assert.strictEqual(m.files?.[0]?.mode, "0600")
    const c = m.containers[0]
    assert.strictEqual(c.name, "bitcoin-knots")
    assert.strictEqual(c.stopTimeout, "600s")
    assert.deepStrictEqual(c.ports?.[0], { host: 8333, container: 8333, public: true })
    assert.deepStrictEqual(c.mounts, [{ source: "data", target: "/home/bitcoin/.bitcoin" }])
  })

  it("decodes a minimal manifest as written", () => {
    assert.deepStrictEqual(manifestOf(parseDoc(demo())), {
      id: "demo",
      name: "Demo",
      version: "1.0.0",
      description: "A demo app",
      category: "system",
      containers: [{ name: "demo", image: "docker.io/library/nginx:1.27.5-alpine" }]
    })
  })

  it("accepts a full manifest using every safe feature", () => {
    const doc = demo(
      {
        ports: [{ host: 8080, container: 80, protocol: "udp", public: true }],
        mounts: [
          { source: "data/conf", target: "/etc/demo", readOnly: true },
          { source: "demo.conf", target: "/etc/demo.conf" }
        ],
        secrets: [{ name: "bitcoin-rpc-password", as: "file", target: "/run/secrets/rpc" }],
        capAdd: ["CHOWN", "NET_BIND_SERVICE"],
        health: { command: ["true"], interval: "500ms", timeout: "1h", startPeriod: "10m", retries: 3 },
        stopTimeout: "30s",
        restart: { policy: "on-failure", backoffInitial: "1s", backoffMax: "5m", resetAfter: "10m" },
        dependsOn: [{ container: "demo-db", condition: "healthy" }],
        preStart: [{ render: ["demo.conf"] }]
      },
      {
        secrets: ["bitcoin-rpc-password"],
        files: [
          {
            path: "demo.conf",
            renderer: "bitcoin-conf",
            params: { network: "mainnet", txindex: true, dbcache: 450 },
            mode: "0644",
            owner: "1000:1000",
            consumers: ["demo"]
          }
        ]
      }
    )
    const containers = doc.containers as Array<Doc>
    containers.push({
      name: "demo-db",
      image:
        "docker.io/library/postgres@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    })
    const m = manifestOf(parseDoc(doc))
    assert.strictEqual(m.containers.length, 2)
    assert.deepStrictEqual(m.containers[0].capAdd, ["CHOWN", "NET_BIND_SERVICE"])
  })

  it("accepts a local build instead of an image", () => {
    const m = manifestOf(
      parseDoc(demo({ image: undefined, build: { context: ".", containerfile: "Containerfile" } }))
    )
    assert.deepStrictEqual(m.containers[0].build, { context: ".", containerfile: "Containerfile" })
  })
})

describe("parseManifest: unknown keys", () => {
  it("refuses an unknown top-level key", () => {
    assertOnlyIssue(parseDoc(demo({}, { homepage: "https://example.org" })), "homepage", "unknown key")
  })

  it("refuses an unknown nested key, naming its full path", () => {
    const result = parseDoc(demo({ mounts: [{ source: "data", target: "/data", readonly: true }] }))
    assertOnlyIssue(result, "containers[0].mounts[0].readonly", "unknown key")
  })
})

describe("parseManifest: mounts", () => {
  it("refuses a mount source that climbs out with ..", () => {
    for (const source of ["../etc", "data/../../etc", ".."]) {
      const issue = assertOnlyIssue(
        parseDoc(demo({ mounts: [{ source, target: "/data" }] })),
        "containers[0].mounts[0].source",
        /relative, no "\.\."/
      )
      assert.include(issue.message, `"${source}"`)
    }
  })

  it("refuses an absolute mount source", () => {
    const issue = assertOnlyIssue(
      parseDoc(
        demo({
          mounts: [
            { source: "data", target: "/a" },
            { source: "/etc", target: "/b" }
          ]
        })
      ),
      "containers[0].mounts[1].source",
      /inside the app's data root/
    )
    assert.include(issue.message, `"/etc"`)
  })

  it("refuses empty and dot segments in a mount source", () => {
    for (const source of ["", "./data", "data//x", "data/"]) {
      assertOnlyIssue(
        parseDoc(demo({ mounts: [{ source, target: "/data" }] })),
        "containers[0].mounts[0].source",
        /inside the app's data root/
      )
    }
  })

  it("refuses a mount target with .. or a relative mount target", () => {
    for (const target of ["/data/../etc", "data"]) {
      const issue = assertOnlyIssue(
        parseDoc(demo({ mounts: [{ source: "data", target }] })),
        "containers[0].mounts[0].target",
        /absolute container path without "\.\."/
      )
      assert.include(issue.message, `"${target}"`)
    }
  })

  it("refuses a secret target with ..", () => {
    assertOnlyIssue(
      parseDoc(
        demo(
          { secrets: [{ name: "bitcoin-rpc-password", target: "/run/../etc/shadow" }] },
          { secrets: ["bitcoin-rpc-password"] }
        )
      ),
      "containers[0].secrets[0].target",
      /absolute container path/
    )
  })
})

describe("parseManifest: privileges", () => {
  it("refuses privileged containers", () => {
    assertOnlyIssue(parseDoc(demo({ privileged: true })), "containers[0].privileged", /not allowed/)
    manifestOf(parseDoc(demo({ privileged: false })))
  })

  it("refuses host namespaces unless the app is allow-listed", () => {
    const hostNetwork = demo({ hostNetwork: true })
    const hostPid = demo({ hostPid: true })
    const net = assertOnlyIssue(parseDoc(hostNetwork), "containers[0].hostNetwork", /host network namespace/)
    assert.include(net.message, `"demo"`)
    assertOnlyIssue(parseDoc(hostPid), "containers[0].hostPid", /host PID namespace/)

    const other: ManifestPolicy = { hostNamespaceAllowList: ["bitcoin-knots"] }
    assertOnlyIssue(parseDoc(hostNetwork, "demo", other), "containers[0].hostNetwork", /host network/)
    assertOnlyIssue(parseDoc(hostPid, "demo", other), "containers[0].hostPid", /host PID/)

    const allowed: ManifestPolicy = { hostNamespaceAllowList: ["demo"] }
    assert.isTrue(manifestOf(parseDoc(hostNetwork, "demo", allowed)).containers[0].hostNetwork)
    assert.isTrue(manifestOf(parseDoc(hostPid, "demo", allowed)).containers[0].hostPid)
  })

  it("refuses capabilities outside the allowed set", () => {
    const issue = assertOnlyIssue(
      parseDoc(demo({ capAdd: ["CHOWN", "SYS_ADMIN"] })),
      "containers[0].capAdd[1]",
      /SYS_ADMIN is not allowed/
    )
    assert.include(issue.message, "NET_BIND_SERVICE")
  })
})

describe("parseManifest: another app's data, NET_ADMIN, templates", () => {
  const lndDep = { dependencies: [{ app: "lnd", condition: "healthy" }] }

  it("mounts a dependency's data read-only", () => {
    const m = manifestOf(
      parseDoc(demo({ mounts: [{ app: "lnd", source: "data", target: "/lnd", readOnly: true }] }, lndDep))
    )
    assert.deepStrictEqual(m.containers[0].mounts, [
      { app: "lnd", source: "data", target: "/lnd", readOnly: true }
    ])
  })

  it("refuses another app's data unless it is a dependency, and unless read-only", () => {
    assertOnlyIssue(
      parseDoc(demo({ mounts: [{ app: "lnd", source: "data", target: "/lnd", readOnly: true }] })),
      "containers[0].mounts[0].app",
      `app "lnd" must be one of this app's dependencies to mount its data`
    )
    assertOnlyIssue(
      parseDoc(demo({ mounts: [{ app: "lnd", source: "data", target: "/lnd" }] }, lndDep)),
      "containers[0].mounts[0].readOnly",
      "another app's data can only be mounted read-only"
    )
    assertOnlyIssue(
      parseDoc(demo({ mounts: [{ app: "lnd", source: "../x", target: "/lnd", readOnly: true }] }, lndDep)),
      "containers[0].mounts[0].source",
      /inside the app's data root/
    )
  })

  it("allows NET_ADMIN only to the apps the policy names (the VPN)", () => {
    const wg = { ...demo({ capAdd: ["NET_ADMIN"] }), id: "wireguard" }
    assert.deepStrictEqual(manifestOf(parseDoc(wg, "wireguard")).containers[0].capAdd, ["NET_ADMIN"])
    assertOnlyIssue(
      parseDoc(demo({ capAdd: ["NET_ADMIN"] })),
      "containers[0].capAdd[0]",
      /NET_ADMIN is not allowed/
    )
    assertOnlyIssue(
      parseDoc(wg, "wireguard", { hostNamespaceAllowList: [] }),
      "containers[0].capAdd[0]",
      /NET_ADMIN is not allowed/
    )
  })

  it("wants exactly one of renderer or template, and a template named next to the manifest", () => {
    const file = (f: Doc) => ({ files: [{ path: "conf", consumers: ["demo"], ...f }] })
    assert.strictEqual(
      manifestOf(parseDoc(demo({}, file({ template: "app.conf.tmpl" })))).files?.[0]?.template,
      "app.conf.tmpl"
    )
    assertOnlyIssue(parseDoc(demo({}, file({}))), "files[0]", "expected exactly one of renderer or template")
    assertOnlyIssue(
      parseDoc(demo({}, file({ template: "x", renderer: "lnd-conf" }))),
      "files[0]",
      "expected exactly one of renderer or template"
    )
    for (const bad of ["../secrets/x", "sub/x", "manifest.yml", ".hidden"]) {
      assertOnlyIssue(
        parseDoc(demo({}, file({ template: bad }))),
        "files[0].template",
        /a file name next to the manifest/
      )
    }
  })
})

describe("parseManifest: images", () => {
  it("requires exactly one of image and build", () => {
    assertOnlyIssue(
      parseDoc(demo({ build: { context: "." } })),
      "containers[0]",
      "expected exactly one of image or build"
    )
    assertOnlyIssue(
      parseDoc(demo({ image: undefined })),
      "containers[0]",
      "expected exactly one of image or build"
    )
  })

  it("refuses an image without a tag or digest", () => {
    assertOnlyIssue(
      parseDoc(demo({ image: "docker.io/library/nginx" })),
      "containers[0].image",
      "expected a pinned tag or digest, not an implicit latest"
    )
    assertOnlyIssue(
      parseDoc(demo({ image: "localhost:5000/demo" })),
      "containers[0].image",
      /pinned tag or digest/
    )
    manifestOf(parseDoc(demo({ image: "localhost:5000/demo:1.2" })))
  })

  it("refuses an image without a registry", () => {
    assertOnlyIssue(parseDoc(demo({ image: "nginx:1.27" })), "containers[0].image", /fully qualified/)
  })

  it("refuses a build context outside the app's directory", () => {
    assertOnlyIssue(
      parseDoc(demo({ image: undefined, build: { context: "../other" } })),
      "containers[0].build.context",
      /inside the app's directory/
    )
    assertOnlyIssue(
      parseDoc(demo({ image: undefined, build: { context: ".", containerfile: "/etc/Containerfile" } })),
      "containers[0].build.containerfile",
      /inside the build context/
    )
  })
})

describe("parseManifest: identity and types", () => {
  it("requires the id to match the directory name", () => {
    const issue = assertOnlyIssue(parseDoc(demo(), "demo-app"), "id", /directory name/)
    assert.include(issue.message, `"demo-app"`)
    assert.include(issue.message, `"demo"`)
  })

  it("refuses a malformed id", () => {
    assertOnlyIssue(parseDoc(demo({}, { id: "Demo App" }), "Demo App"), "id", /lowercase id/)
  })

  it("refuses a port written as a string", () => {
    assertOnlyIssue(
      parseDoc(demo({ ports: [{ host: "8080", container: 80 }] })),
      "containers[0].ports[0].host",
      /number/
    )
  })

  it("refuses a port out of range", () => {
    assertOnlyIssue(
      parseDoc(demo({ ports: [{ host: 8080, container: 70000 }] })),
      "containers[0].ports[0].container",
      /between 1 and 65535/
    )
    assertOnlyIssue(
      parseDoc(demo({ ports: [{ host: 0, container: 80 }] })),
      "containers[0].ports[0].host",
      /between 1 and 65535/
    )
  })

  it("refuses a duration written in words", () => {
    assertOnlyIssue(parseDoc(demo({ stopTimeout: "30 seconds" })), "containers[0].stopTimeout", /duration/)
    assertOnlyIssue(
      parseDoc(demo({ health: { command: ["true"], interval: "30 seconds" } })),
      "containers[0].health.interval",
      /such as 500ms, 30s, 10m or 1h/
    )
  })

  it("refuses a bad file mode", () => {
    const file = (mode: unknown) =>
      demo(
        {},
        {
          secrets: ["bitcoin-rpc-password"],
          files: [{ path: "demo.conf", renderer: "bitcoin-conf", mode, consumers: ["demo"] }]
        }
      )
    assertOnlyIssue(parseDoc(file("0999")), "files[0].mode", /octal file mode/)
    assertOnlyIssue(parseDoc(file("644")), "files[0].mode", /octal file mode/)
    // Unquoted in YAML, 0600 is a number, not the string the schema wants.
    assertOnlyIssue(
      parseManifest(FILE, Yaml.stringify(file("0600")).replace(`mode: "0600"`, "mode: 0600"), "demo"),
      "files[0].mode",
      /string/
    )
  })

  it("refuses an unknown category and a missing container list", () => {
    assertOnlyIssue(parseDoc(demo({}, { category: "games" })), "category", /bitcoin/)
    const { containers: _, ...noContainers } = demo()
    assertOnlyIssue(parseDoc(noContainers), "containers", /Missing key/)
    const empty = issuesOf(parseDoc({ ...noContainers, containers: [] }))
    assert.strictEqual(empty.length, 1)
    assert.match(empty[0]!.path, /^containers/)
  })

  it("reports every schema problem at once", () => {
    const issues = issuesOf(
      parseDoc(demo({ ports: [{ host: "80", container: 70000 }], stopTimeout: "soon" }, { extra: 1 }))
    )
    assert.deepStrictEqual(issues.map((i) => i.path).sort(), [
      "containers[0].ports[0].container",
      "containers[0].ports[0].host",
      "containers[0].stopTimeout",
      "extra"
    ])
    for (const issue of issues) assert.strictEqual(issue.file, FILE)
  })

  it("reports every safety problem at once", () => {
    const issues = issuesOf(
      parseDoc(demo({ privileged: true, mounts: [{ source: "../x", target: "/x" }] }), "other")
    )
    assert.deepStrictEqual(issues.map((i) => i.path).sort(), [
      "containers[0].mounts[0].source",
      "containers[0].privileged",
      "id"
    ])
  })

  it("refuses a document that is not a mapping", () => {
    assertOnlyIssue(parseManifest(FILE, "- just\n- a list\n", "demo"), "", /object/)
    assertOnlyIssue(parseManifest(FILE, "", "demo"), "", /object/)
  })
})

describe("parseManifest: secrets, files and container references", () => {
  it("refuses a container secret that the app does not declare", () => {
    const issue = assertOnlyIssue(
      parseDoc(demo({ secrets: [{ name: "lnd-macaroon" }] })),
      "containers[0].secrets[0].name",
      /not declared in secrets/
    )
    assert.include(issue.message, `"lnd-macaroon"`)
  })

  it("refuses an unknown renderer", () => {
    const issue = assertOnlyIssue(
      parseDoc(demo({}, { files: [{ path: "demo.conf", renderer: "demo-conf", consumers: ["demo"] }] })),
      "files[0].renderer",
      /unknown renderer/
    )
    assert.include(issue.message, `"demo-conf"`)
  })

  it("refuses a renderer whose secret is not declared", () => {
    for (const renderer of ["bitcoin-conf", "lnd-conf", "bitcoin-ui-nginx"]) {
      const files = [{ path: "demo.conf", renderer, consumers: ["demo"] }]
      const issue = assertOnlyIssue(parseDoc(demo({}, { files })), "files[0].renderer", /needs secret/)
      assert.include(issue.message, `"bitcoin-rpc-password"`)
      assert.include(issue.message, renderer)
      manifestOf(parseDoc(demo({}, { files, secrets: ["bitcoin-rpc-password"] })))
    }
  })

  it("refuses a rendered file outside the data root", () => {
    assertOnlyIssue(
      parseDoc(
        demo(
          {},
          {
            secrets: ["bitcoin-rpc-password"],
            files: [{ path: "../demo.conf", renderer: "bitcoin-conf", consumers: ["demo"] }]
          }
        )
      ),
      "files[0].path",
      /inside the app's data root/
    )
  })

  it("refuses a preStart render of a file the app does not have", () => {
    const issue = assertOnlyIssue(
      parseDoc(demo({ preStart: [{ render: ["missing.conf"] }] })),
      "containers[0].preStart[0].render[0]",
      /not one of this app's files/
    )
    assert.include(issue.message, `"missing.conf"`)
  })

  it("refuses dependsOn an unknown container, and on itself", () => {
    const doc = demo()
    ;(doc.containers as Array<Doc>).push({
      name: "demo-worker",
      image: "docker.io/library/nginx:1.27.5-alpine",
      dependsOn: [{ container: "demo" }, { container: "demo-db" }]
    })
    const issue = assertOnlyIssue(parseDoc(doc), "containers[1].dependsOn[1].container", /no container/)
    assert.include(issue.message, `"demo-db"`)

    assertOnlyIssue(
      parseDoc(demo({ dependsOn: [{ container: "demo" }] })),
      "containers[0].dependsOn[0].container",
      /cannot depend on itself/
    )
  })

  it("refuses two containers with the same name", () => {
    const doc = demo()
    ;(doc.containers as Array<Doc>).push({ name: "demo", image: "docker.io/library/nginx:1.27.5-alpine" })
    assertOnlyIssue(parseDoc(doc), "containers[1].name", /used twice/)
  })

  it("refuses an app that depends on itself", () => {
    assertOnlyIssue(
      parseDoc(demo({}, { dependencies: [{ app: "demo" }] })),
      "dependencies[0].app",
      /cannot depend on itself/
    )
  })

  it("refuses to give an app the daemon's API token", () => {
    assertOnlyIssue(
      parseDoc(demo({}, { secrets: ["api-token"] })),
      "secrets[0]",
      `secret "api-token" is the node's own and cannot be given to an app`
    )
  })

  it("refuses an app that depends on a capability it provides", () => {
    assertOnlyIssue(
      parseDoc(demo({}, { provides: ["bitcoind"], dependencies: [{ app: "bitcoind" }] })),
      "dependencies[0].app",
      'an app cannot depend on "bitcoind", which it provides itself'
    )
  })
})

describe("parseManifest: YAML", () => {
  it("reports invalid YAML in the given file", () => {
    const issues = issuesOf(parseManifest(FILE, "id: demo\nname: [unclosed\n", "demo"))
    assert.isAbove(issues.length, 0)
    for (const issue of issues) {
      assert.strictEqual(issue.file, FILE)
      assert.match(issue.message, /^invalid YAML: /)
      assert.notInclude(issue.message, "\n")
    }
  })

  it("reports a duplicate key", () => {
    const issues = issuesOf(parseManifest(FILE, "id: demo\nid: other\nname: Demo\n", "demo"))
    assert.strictEqual(issues.length, 1)
    assert.strictEqual(issues[0]!.file, FILE)
    assert.match(issues[0]!.message, /^invalid YAML: Map keys must be unique/)
  })

  it("names the line and column of a YAML error", () => {
    const dup = issuesOf(parseManifest(FILE, "id: demo\nid: other\n", "demo"))
    assert.match(dup[0]!.path, /^line 2, column \d+$/)
    const bad = issuesOf(parseManifest(FILE, "id: demo\ncontainers:\n  - name: x\n   image: y\n", "demo"))
    assert.match(bad[0]!.path, /^line \d+, column \d+$/)
  })
})

describe("formatIssue", () => {
  it("prints the file, the path when there is one, and the message", () => {
    assert.strictEqual(
      formatIssue({ file: FILE, path: "containers[0].image", message: "bad" }),
      `${FILE}: at containers[0].image: bad`
    )
    assert.strictEqual(formatIssue({ file: FILE, path: "", message: "bad" }), `${FILE}: bad`)
  })
})

describe("parseManifest: directories and ownership", () => {
  const tor = (dirs: ReadonlyArray<Doc>, container: Doc = {}) =>
    parseDoc(
      demo(
        { user: "100:101", mounts: [{ source: "data", target: "/var/lib/tor" }], ...container },
        { directories: dirs }
      )
    )

  it("accepts declared directories owned by a container or a numeric uid", () => {
    const m = manifestOf(
      tor([
        { path: "data/hidden_service", mode: "0700", owner: "demo" },
        { path: "data/other", owner: "1000:1000" },
        { path: "data/plain" }
      ])
    )
    assert.deepStrictEqual(m.directories?.[0], { path: "data/hidden_service", mode: "0700", owner: "demo" })
  })

  it("refuses a directory outside the data root or with ..", () => {
    for (const path of ["../etc", "/etc/tor", "data/../../x", "data//x", "./data"]) {
      const issue = assertOnlyIssue(tor([{ path }]), "directories[0].path", /inside the app's data root/)
      assert.include(issue.message, `"${path}"`)
    }
  })

  it("refuses an owner that is neither a container of the app nor a numeric uid, and a bad mode", () => {
    assertOnlyIssue(
      tor([{ path: "data/hs", owner: "tor" }]),
      "directories[0].owner",
      /a container of this app/
    )
    assertOnlyIssue(tor([{ path: "data/hs", mode: "700" }]), "directories[0].mode", /octal file mode/)
  })

  it("refuses a directory declared twice, or one that is a rendered file", () => {
    assertOnlyIssue(tor([{ path: "data/hs" }, { path: "data/hs" }]), "directories[1].path", /declared twice/)
    const files = [{ path: "data/bitcoin.conf", renderer: "bitcoin-conf", consumers: ["demo"] }]
    const doc = demo(
      {},
      { secrets: ["bitcoin-rpc-password"], files, directories: [{ path: "data/bitcoin.conf" }] }
    )
    assertOnlyIssue(parseDoc(doc), "directories[0].path", /rendered files, not a directory/)
  })

  it("needs a numeric user for a container that writes a data dir", () => {
    const issue = assertOnlyIssue(
      parseDoc(demo({ user: "bitcoin", mounts: [{ source: "data", target: "/data" }] })),
      "containers[0].user",
      /numeric uid/
    )
    assert.include(issue.message, `"data"`)
    // Read-only, or given an owner explicitly: the name is the image's business.
    manifestOf(
      parseDoc(demo({ user: "bitcoin", mounts: [{ source: "data", target: "/data", readOnly: true }] }))
    )
    manifestOf(
      parseDoc(
        demo(
          { user: "bitcoin", mounts: [{ source: "data", target: "/data" }] },
          { directories: [{ path: "data", owner: "1000" }] }
        )
      )
    )
    assertOnlyIssue(
      parseDoc(
        demo(
          { user: "bitcoin", mounts: [{ source: "data", target: "/data" }] },
          { directories: [{ path: "data", owner: "demo" }] }
        )
      ),
      "directories[0].owner",
      /a name only its image can resolve/
    )
  })

  it("refuses two writers with different users on one directory unless its owner is declared", () => {
    const doc = demo({ user: "1000", mounts: [{ source: "data", target: "/data" }] })
    ;(doc.containers as Array<Doc>).push({
      name: "demo-db",
      image: "docker.io/library/nginx:1.27.5-alpine",
      user: "999",
      mounts: [{ source: "data", target: "/db" }]
    })
    const issue = assertOnlyIssue(
      parseDoc(doc),
      "containers[1].mounts[0].source",
      /also written by container demo/
    )
    assert.include(issue.message, "1000:1000")
    manifestOf(parseDoc({ ...doc, directories: [{ path: "data", owner: "demo-db" }] }))
  })
})
