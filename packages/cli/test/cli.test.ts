import { spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Catalog, Desired, Observed } from "@archy/core"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { readCatalogSources } from "../../core/test/catalogSources.ts"

const root = fileURLToPath(new URL("../../..", import.meta.url))
const appsDir = join(root, "apps")
const appCount = readCatalogSources(appsDir).length

interface Run {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the real `archy` executable from the repo root. */
const archy = (...args: Array<string>): Run => {
  const { ARCHY_APPS_DIR: _, ...env } = process.env
  const result = spawnSync(
    process.execPath,
    ["--disable-warning=ExperimentalWarning", "packages/cli/src/bin.ts", ...args],
    { cwd: root, env, encoding: "utf8", timeout: 30_000 }
  )
  if (result.error !== undefined) throw result.error
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

const tempDirs: Array<string> = []
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "archy-cli-"))
  tempDirs.push(dir)
  return dir
}

/** A manifest for `id` with one container; `container` is YAML spliced into the container. */
const manifestText = (id: string, container = "", top = "") => `id: ${id}
name: ${id}
version: 1.0.0
description: The ${id} app
category: system
${top}
containers:
  - name: ${id}
    image: docker.io/library/nginx:1.27.5-alpine
${container}`

/** Writes a catalog directory; returns it and each app's manifest path. */
const catalog = (apps: Record<string, string>) => {
  const dir = tempDir()
  const files: Record<string, string> = {}
  for (const [id, text] of Object.entries(apps)) {
    mkdirSync(join(dir, id))
    files[id] = join(dir, id, "manifest.yml")
    writeFileSync(files[id], text)
  }
  return { dir, files }
}

interface JsonAction {
  readonly kind: string
  readonly target: string
  readonly cause: string
}

const parseActions = (stdout: string): ReadonlyArray<JsonAction> => {
  const parsed: unknown = JSON.parse(stdout)
  assert.isObject(parsed)
  const actions = (parsed as { actions?: unknown }).actions
  assert.isArray(actions)
  for (const a of actions as Array<unknown>) {
    assert.isObject(a)
    assert.deepStrictEqual(Object.keys(a as object).sort(), ["cause", "kind", "target"])
    for (const key of ["kind", "target", "cause"] as const) {
      const value = (a as Record<string, unknown>)[key]
      assert.isString(value)
      assert.isAbove((value as string).length, 0)
    }
  }
  return actions as ReadonlyArray<JsonAction>
}

describe("archy validate", () => {
  it("accepts the repo's catalog", () => {
    const run = archy("validate", "apps")
    assert.strictEqual(run.status, 0, run.stderr)
    assert.strictEqual(run.stdout.trim(), `${appCount} app(s) valid in ${appsDir}`)
    assert.strictEqual(run.stderr, "")
  })

  it("uses the install's apps/ without an argument", () => {
    const run = archy("validate")
    assert.strictEqual(run.status, 0, run.stderr)
    assert.include(run.stdout, `${appCount} app(s) valid in ${appsDir}`)
  })

  it("reports an unknown key with the manifest's path and exits 1", () => {
    const { dir, files } = catalog({ alpha: manifestText("alpha", "    restartPolicy: always") })
    const run = archy("validate", dir)
    assert.strictEqual(run.status, 1)
    assert.include(run.stderr, `${files.alpha}: at containers[0].restartPolicy: unknown key`)
    assert.include(run.stderr, `1 problem(s); 0 app(s) valid in ${dir}`)
    assert.strictEqual(run.stdout, "")
  })

  it("reports a mount that climbs out of the data root", () => {
    const { dir, files } = catalog({
      alpha: manifestText("alpha", "    mounts:\n      - { source: ../../etc, target: /etc/host }")
    })
    const run = archy("validate", dir)
    assert.strictEqual(run.status, 1)
    assert.include(run.stderr, `${files.alpha}: at containers[0].mounts[0].source:`)
    assert.include(run.stderr, `"../../etc"`)
  })

  it("reports only the bad app of a catalog with a good one", () => {
    const { dir, files } = catalog({
      alpha: manifestText("alpha"),
      beta: manifestText("beta", "    privileged: true")
    })
    const run = archy("validate", dir)
    assert.strictEqual(run.status, 1)
    const lines = run.stderr.trimEnd().split("\n")
    assert.deepStrictEqual(lines, [
      `${files.beta}: at containers[0].privileged: privileged containers are not allowed on the node`,
      `1 problem(s); 1 app(s) valid in ${dir}`
    ])
    assert.notInclude(run.stderr, files.alpha!)
  })

  it("reports an app directory without a manifest", () => {
    const { dir } = catalog({ alpha: manifestText("alpha") })
    mkdirSync(join(dir, "beta"))
    const run = archy("validate", dir)
    assert.strictEqual(run.status, 1)
    assert.include(run.stderr, `${join(dir, "beta", "manifest.yml")}: cannot read manifest.yml`)
  })

  it("reports a catalog directory that does not exist", () => {
    const missing = join(tempDir(), "nowhere")
    const run = archy("validate", missing)
    assert.strictEqual(run.status, 1)
    assert.include(run.stderr, `archy: cannot read the catalog at ${missing}`)
  })
})

describe("archy catalog export", () => {
  it("prints the repo's catalog as JSON, by id, and writes the same bytes with --out", () => {
    const run = archy("catalog", "export", "--apps", "apps")
    assert.strictEqual(run.status, 0, run.stderr)
    const exported = JSON.parse(run.stdout) as { apps: Array<{ id: string; containers: Array<string> }> }
    const ids = exported.apps.map((a) => a.id)
    assert.strictEqual(ids.length, appCount)
    assert.deepStrictEqual(ids, [...ids].sort())
    assert.isAtLeast(exported.apps.flatMap((a) => a.containers).length, 20)

    const out = join(tempDir(), "web", "catalog.json")
    const written = archy("catalog", "export", "--apps", "apps", "--out", out)
    assert.strictEqual(written.status, 0, written.stderr)
    assert.strictEqual(written.stdout.trim(), `${appCount} app(s) exported to ${out}`)
    assert.strictEqual(readFileSync(out, "utf8"), run.stdout)
    assert.strictEqual(statSync(out).mode & 0o777, 0o644)
  })

  it("exports nothing from a catalog with a bad manifest, naming the problem, and leaves the old file", () => {
    const { dir, files } = catalog({
      alpha: manifestText("alpha"),
      beta: manifestText("beta", "    privileged: true")
    })
    const out = join(tempDir(), "catalog.json")
    writeFileSync(out, "previous export\n")
    const run = archy("catalog", "export", "--apps", dir, "--out", out)
    assert.strictEqual(run.status, 1)
    assert.include(run.stderr, `${files.beta}: at containers[0].privileged:`)
    assert.include(run.stderr, `1 problem(s) in ${dir}: nothing exported`)
    assert.strictEqual(run.stdout, "")
    assert.strictEqual(readFileSync(out, "utf8"), "previous export\n")
  })

  it("says which file it could not write", () => {
    const { dir } = catalog({ alpha: manifestText("alpha") })
    const blocker = join(tempDir(), "not-a-dir")
    writeFileSync(blocker, "")
    const run = archy("catalog", "export", "--apps", dir, "--out", join(blocker, "catalog.json"))
    assert.strictEqual(run.status, 1)
    assert.include(
      run.stderr,
      `archy catalog export: writing ${join(blocker, "catalog.json")} failed at create the directory`
    )
  })
})

describe("archy plan", () => {
  it("prints the plan for an empty node as JSON", () => {
    const run = archy("plan", "--apps", "apps", "--fresh", "--json")
    assert.strictEqual(run.status, 0, run.stderr)
    const actions = parseActions(run.stdout)
    assert.isAbove(actions.length, 0)
    const kinds = new Set(actions.map((a) => a.kind))
    for (const kind of ["ensure-network", "ensure-secret", "pull-image", "write-file", "create", "start"]) {
      assert.isTrue(kinds.has(kind), `no ${kind} action`)
    }
    // First boot: the node's directories come first, each with why it exists, mode and owner.
    assert.deepStrictEqual(actions.slice(0, 4), [
      {
        kind: "ensure-directory",
        target: "dir:/var/lib/archipelago",
        cause: "/var/lib/archipelago does not exist (the node's state dir; want 0755, owner 0:0)"
      },
      {
        kind: "ensure-directory",
        target: "dir:/var/lib/archipelago/apps",
        cause: "apps does not exist (the apps' data roots; want 0755, owner 0:0)"
      },
      {
        kind: "ensure-directory",
        target: "dir:/var/lib/archipelago/secrets",
        cause: "secrets does not exist (the node's canonical secrets; want 0700, owner 0:0)"
      },
      {
        kind: "ensure-network",
        target: "network:archipelago",
        cause: "network archipelago does not exist (want 10.89.0.0/24, gateway 10.89.0.1)"
      }
    ])
    assert.deepStrictEqual(
      actions.find((a) => a.target === "dir:/var/lib/archipelago/apps/lnd/data"),
      {
        kind: "ensure-directory",
        target: "dir:/var/lib/archipelago/apps/lnd/data",
        cause: "apps/lnd/data does not exist (data of container lnd; want 0755, owner 0:0)"
      }
    )
    // The bitcoin node and its UI are created; lnd and electrumx wait for it to be healthy,
    // and their UIs for them to run.
    const containers = actions.filter((a) => a.kind === "create").map((a) => a.target)
    assert.deepStrictEqual([...containers].sort(), ["container:archy-bitcoin-ui", "container:bitcoin-knots"])
    const waits = Object.fromEntries(actions.filter((a) => a.kind === "wait").map((a) => [a.target, a.cause]))
    assert.strictEqual(
      waits["container:lnd"],
      "waiting for bitcoind (bitcoin-knots) to be healthy (bitcoin-knots is being started)"
    )
    assert.strictEqual(waits["container:archy-lnd-ui"], "waiting for lnd to run (lnd does not exist yet)")
    assert.includeMembers(Object.keys(waits), ["container:electrumx", "container:archy-electrs-ui"])
    for (const create of containers) {
      const i = actions.findIndex((a) => a.kind === "create" && a.target === create)
      assert.deepStrictEqual(actions[i + 1]?.kind, "start")
      assert.deepStrictEqual(actions[i + 1]?.target, create)
    }
  })

  it("prints one line per action in the human output", () => {
    const json = parseActions(archy("plan", "--apps", "apps", "--fresh", "--json").stdout)
    const run = archy("plan", "--apps", "apps", "--fresh")
    assert.strictEqual(run.status, 0, run.stderr)
    const lines = run.stdout.trimEnd().split("\n")
    assert.strictEqual(lines.length, json.length)
    lines.forEach((line, i) => {
      const action = json[i]!
      assert.match(
        line,
        new RegExp(`^${action.kind} +${action.target.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} +`)
      )
      assert.isTrue(line.endsWith(action.cause), line)
    })
  })

  it("exits 1 naming the file and the path when --observed does not fit", () => {
    const file = join(tempDir(), "observed.json")
    writeFileSync(
      file,
      JSON.stringify({ containers: [{ id: 7 }], images: [], networks: [], secrets: [], files: [] })
    )
    const run = archy("plan", "--apps", "apps", "--observed", file)
    assert.strictEqual(run.status, 1)
    assert.include(run.stderr, file)
    assert.include(run.stderr, "containers[0].id")
    assert.strictEqual(run.stdout, "")
  })

  it("exits 1 naming the file when --observed is not JSON", () => {
    const file = join(tempDir(), "observed.json")
    writeFileSync(file, "{ not json")
    const run = archy("plan", "--apps", "apps", "--observed", file)
    assert.strictEqual(run.status, 1)
    assert.include(run.stderr, `${file}:`)
  })

  it("exits 1 when --observed cannot be read", () => {
    const file = join(tempDir(), "missing.json")
    const run = archy("plan", "--apps", "apps", "--observed", file)
    assert.strictEqual(run.status, 1)
    assert.include(run.stderr, `archy: cannot read ${file}`)
  })

  it("prints the plan but exits 1 when the catalog has issues", () => {
    const { dir, files } = catalog({
      alpha: manifestText("alpha", "", "defaultInstalled: true"),
      beta: manifestText("beta", "    hostPid: true", "defaultInstalled: true")
    })
    const run = archy("plan", "--apps", dir, "--fresh", "--json")
    assert.strictEqual(run.status, 1)
    assert.include(run.stderr, `${files.beta}: at containers[0].hostPid:`)
    const targets = parseActions(run.stdout).map((a) => a.target)
    assert.include(targets, "container:alpha")
    assert.notInclude(targets, "container:beta")
  })

  describe("against a node where everything already runs", () => {
    const loaded = Catalog.catalogFromSources(readCatalogSources(appsDir))
    const desired = Desired.make({
      catalog: loaded,
      node: Desired.defaultNodeConfig,
      selection: Desired.defaultSelection(loaded),
      secrets: new Map()
    })
    const running = (
      overrides: Record<string, Partial<Observed.ObservedContainer>> = {}
    ): Observed.Observed => ({
      containers: desired.apps.flatMap((app) =>
        app.containers.map((c) => ({
          id: `${c.name}-0123456789abcdef`,
          name: c.name,
          image: c.spec.image,
          labels: { ...c.spec.labels, [Observed.labels.specHash]: c.specHash },
          state: "running" as const,
          startedAtMs: 1_700_000_000_000,
          ...overrides[c.name]
        }))
      ),
      images: desired.images.map((source, i) => ({ id: `image-${i}`, names: [source.ref] })),
      networks: [
        { name: desired.network.name, subnet: desired.network.subnet, gateway: desired.network.gateway }
      ],
      secrets: [...desired.secrets],
      files: [],
      directories: [...desired.directories, ...desired.apps.flatMap((a) => a.directories)].map((d) => ({
        path: d.path,
        kind: "directory" as const,
        mode: 0o40000 | d.mode,
        uid: d.uid,
        gid: d.gid
      }))
    })
    const planAgainst = (observed: Observed.Observed) => {
      const file = join(tempDir(), "observed.json")
      writeFileSync(file, JSON.stringify(observed))
      const run = archy("plan", "--apps", "apps", "--observed", file, "--json")
      assert.strictEqual(run.status, 0, run.stderr)
      return parseActions(run.stdout)
    }

    it("only waits on the files it cannot check without secret values", () => {
      assert.strictEqual(loaded.issues.length, 0)
      const actions = planAgainst(running())
      assert.deepStrictEqual(
        actions.map((a) => [a.kind, a.target]),
        [
          ["wait", "file:/var/lib/archipelago/apps/bitcoin-knots/data/bitcoin.conf"],
          ["wait", "file:/var/lib/archipelago/apps/bitcoin-ui/nginx.conf"],
          ["wait", "file:/var/lib/archipelago/apps/lnd/data/lnd.conf"]
        ]
      )
      for (const a of actions) assert.include(a.cause, "secret values are not available")
    })

    it("starts only the container that exited", () => {
      const actions = planAgainst(
        running({ lnd: { state: "exited", exitCode: 1 }, "bitcoin-knots": { health: "healthy" } })
      )
      assert.deepStrictEqual(
        actions.filter((a) => a.kind !== "wait"),
        [{ kind: "start", target: "container:lnd", cause: "container lnd is exited (exit code 1)" }]
      )
    })
  })
})
