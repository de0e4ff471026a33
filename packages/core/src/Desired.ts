/**
 * Desired: what the node should be, derived purely from the catalog, the node's settings, the
 * user's choices (which apps are installed, which are stopped) and the canonical secrets.
 *
 * Every container gets its full creation spec with host paths resolved and a hash of it; every
 * rendered file gets its exact bytes (when its secrets exist) and their hash. Problems with the
 * user's choices (a conflict, a missing dependency) block the app with a reason instead of
 * removing it: a selection mistake must never delete a running node's containers.
 */
import * as Redacted from "effect/Redacted"
import type { Catalog, CatalogApp } from "./Catalog.ts"
import { providersOf } from "./Catalog.ts"
import { sha256Hex, shortHash } from "./Hash.ts"
import {
  type ContainerManifest,
  durationMs,
  type HealthCheck,
  type RenderedFile,
  type RestartPolicy
} from "./Manifest.ts"
import { labels } from "./Observed.ts"
import { type IdMapping, type Owner, ownerText, parseUser, rootful, toHost } from "./Ownership.ts"
import type { Renderer } from "./Render/Renderer.ts"
import { findRenderer } from "./Render/Renderers.ts"
import { templateRenderer } from "./Render/Template.ts"
import * as Settings from "./Settings.ts"
import type { ImageOverrides } from "./Upgrade.ts"

/** The node-wide settings Desired depends on. */
export interface NodeConfig {
  /** Each app's data lives in `<dataRoot>/<app id>/`. */
  readonly dataRoot: string
  /** Canonical secrets, one 0600 file each. */
  readonly secretsDir: string
  readonly network: NetworkSpec
  /** How container uids map to host uids (rootless podman); rootful when absent. */
  readonly ids?: IdMapping
}

export interface NetworkSpec {
  readonly name: string
  readonly subnet: string
  readonly gateway: string
  /** Every container resolves this name to the gateway (FM4). */
  readonly hostAlias: string
}

export const defaultNodeConfig: NodeConfig = {
  dataRoot: "/var/lib/archipelago/apps",
  secretsDir: "/var/lib/archipelago/secrets",
  network: {
    name: "archipelago",
    subnet: "10.89.0.0/24",
    gateway: "10.89.0.1",
    hostAlias: "host.archipelago"
  }
}

/** What the user chose: installed apps, and those among them they stopped. */
export interface Selection {
  readonly installed: ReadonlyArray<string>
  readonly stopped: ReadonlyArray<string>
}

/** The default set for a fresh node: every app marked `defaultInstalled`. */
export const defaultSelection = (catalog: Catalog): Selection => ({
  installed: catalog.apps.filter((a) => a.manifest.defaultInstalled === true).map((a) => a.manifest.id),
  stopped: []
})

/** One image the node needs, from a registry or built from a local context. */
export type ResolvedSource =
  | { readonly _tag: "Registry"; readonly ref: string }
  | { readonly _tag: "Build"; readonly ref: string; readonly context: string; readonly containerfile: string }

/** Everything `podman create` needs, with host paths resolved. Its hash is the spec-hash label. */
export interface ContainerSpec {
  readonly name: string
  readonly image: string
  readonly command?: ReadonlyArray<string>
  readonly entrypoint?: ReadonlyArray<string>
  readonly user?: string
  readonly workdir?: string
  readonly env: ReadonlyArray<readonly [string, string]>
  readonly ports: ReadonlyArray<{
    readonly hostIp: string
    readonly host: number
    readonly container: number
    readonly protocol: "tcp" | "udp"
  }>
  readonly mounts: ReadonlyArray<{
    readonly source: string
    readonly target: string
    readonly readOnly: boolean
    /** A rendered file is mounted as a file; anything else is a directory created on demand. */
    readonly kind: "directory" | "file"
  }>
  /** Secrets reach containers only as read-only mounted files. */
  readonly secretMounts: ReadonlyArray<{
    readonly name: string
    readonly source: string
    readonly target: string
  }>
  readonly networks: ReadonlyArray<string>
  readonly hostNetwork: boolean
  readonly hostPid: boolean
  readonly capAdd: ReadonlyArray<string>
  readonly hosts: ReadonlyArray<readonly [string, string]>
  readonly stopTimeoutSeconds: number
  readonly health?: HealthCheck
  readonly labels: Readonly<Record<string, string>>
}

export interface DesiredContainer {
  readonly app: string
  readonly name: string
  readonly source: ResolvedSource
  readonly spec: ContainerSpec
  readonly specHash: string
  readonly shouldRun: boolean
  /** Rendered files (absolute paths) this container consumes: restart when they change. */
  readonly consumes: ReadonlyArray<string>
  /** Hash of the consumed files' bytes, for the files-hash label ("pending" before secrets exist). */
  readonly filesHash: string
  /**
   * Containers that must be up before this one starts: those of the apps it depends on and
   * those it names in `dependsOn`. `healthy` waits for a passing health check (lnd waits for
   * bitcoind's RPC), `started` only for the container to run.
   */
  readonly waitsFor: ReadonlyArray<Gate>
  /** How the reconciler restarts it after a crash (not part of the spec: no recreate on change). */
  readonly restart?: RestartPolicy
}

export interface Gate {
  readonly container: string
  readonly condition: "started" | "healthy"
  /** What the manifest asked for, for the Wait's cause: `bitcoind (bitcoin-knots)`. */
  readonly because: string
}

export interface DesiredFile {
  readonly app: string
  /** Absolute host path. */
  readonly path: string
  /** A built-in renderer's id, or `template:<file>`. */
  readonly renderer: string
  /** The template it renders, when it is one (the reconciler renders late from it). */
  readonly template?: { readonly file: string; readonly text: string }
  readonly params: Readonly<Record<string, string | number | boolean>>
  readonly secrets: ReadonlyArray<string>
  readonly mode: number
  readonly owner?: string
  readonly consumers: ReadonlyArray<string>
  /** The rendered bytes; absent while a secret it needs does not exist yet. */
  readonly content?: Redacted.Redacted<string>
  readonly sha256?: string
  /** Why it cannot be rendered (bad params); its consumers wait, unless a fail-safe is written. */
  readonly renderError?: string
  /** `content` is the renderer's fail-safe (no credentials, refuses service), not the real file. */
  readonly failSafe?: boolean
}

/**
 * A directory the node needs before its first container: where, with which mode and host owner,
 * and why. First boot is nothing but the first pass that finds them all missing.
 */
export interface DesiredDirectory {
  /** The app it belongs to; absent for the node's own (state dir, secrets, apps root). */
  readonly app?: string
  /** Absolute host path. */
  readonly path: string
  /** The path as people read it: relative to the state dir (`apps/tor/data/hidden_service`). */
  readonly shown: string
  /**
   * The trusted ancestor, which only root can change: symbolic links up to and including it are
   * followed (a state dir on another disk), none below it. A container that owns `data/` could
   * otherwise point `data/x` at /etc and have the node chown it. The node's own directories are
   * their own root; an app's are under the apps root.
   */
  readonly root: string
  readonly mode: number
  /** Host uid and gid, already mapped through the service user's subordinate ranges. */
  readonly uid: number
  readonly gid: number
  /** Why it exists: `data of container lnd`, `the node's canonical secrets`. */
  readonly purpose: string
}

export interface DesiredApp {
  readonly id: string
  /** Parents first; empty while the app is blocked. */
  readonly directories: ReadonlyArray<DesiredDirectory>
  readonly files: ReadonlyArray<DesiredFile>
  /** In start order: a container comes after those it depends on. */
  readonly containers: ReadonlyArray<DesiredContainer>
  /** Set when the user's choices cannot be honoured; existing containers are left alone. */
  readonly blocked?: string
}

export interface Desired {
  readonly network: NetworkSpec
  /** The node's own directories (state dir, apps root, secrets), parents first. */
  readonly directories: ReadonlyArray<DesiredDirectory>
  /** Canonical secrets the installed apps need, sorted. */
  readonly secrets: ReadonlyArray<string>
  /** Images the installed apps need, deduplicated, in first-use order. */
  readonly images: ReadonlyArray<ResolvedSource>
  /** Installed apps in dependency order. */
  readonly apps: ReadonlyArray<DesiredApp>
  /** Installed apps whose manifests do not load: their containers are kept as they are. */
  readonly unmanaged: ReadonlyArray<string>
}

/** Default grace before SIGKILL: generous, since bitcoind flushes its UTXO cache on stop. */
const defaultStopTimeoutMs = 30_000

const resolveSource = (app: CatalogApp, c: ContainerManifest, override?: string): ResolvedSource => {
  const own: ResolvedSource =
    c.build !== undefined
      ? {
          _tag: "Build",
          ref: `localhost/archipelago/${c.name}:${app.manifest.version}`,
          context: `${app.dir}/${c.build.context}`.replace(/\/\.$/, ""),
          containerfile: c.build.containerfile ?? "Containerfile"
        }
      : { _tag: "Registry", ref: c.image! }
  // An upgrade or rollback names the image to run instead (see Upgrade.ts).
  return override === undefined || override === own.ref ? own : { _tag: "Registry", ref: override }
}

const containerSpec = (
  node: NodeConfig,
  app: CatalogApp,
  c: ContainerManifest,
  source: ResolvedSource,
  lookup: Settings.Lookup
): ContainerSpec => {
  const appRoot = `${node.dataRoot}/${app.manifest.id}`
  const hostNetwork = c.hostNetwork === true
  const text = (value: string) => Settings.resolveText(value, lookup)
  const port = (value: number | string) => Number(Settings.resolve(value, lookup))
  return {
    name: c.name,
    image: source.ref,
    ...(c.command !== undefined ? { command: c.command.map(text) } : {}),
    ...(c.entrypoint !== undefined ? { entrypoint: c.entrypoint.map(text) } : {}),
    ...(c.user !== undefined ? { user: c.user } : {}),
    ...(c.workdir !== undefined ? { workdir: c.workdir } : {}),
    env: Object.entries(c.env ?? {})
      .map(([k, v]) => [k, text(v)] as const)
      .sort(([a], [b]) => (a < b ? -1 : 1)),
    ports: (c.ports ?? []).map((p) => ({
      hostIp: p.public === true ? "0.0.0.0" : "127.0.0.1",
      host: port(p.host),
      container: port(p.container),
      protocol: p.protocol ?? "tcp"
    })),
    mounts: (c.mounts ?? []).map((m) => ({
      // Another app's data (a dependency's, read-only) lives under that app's root.
      source: m.app !== undefined ? `${node.dataRoot}/${m.app}/${m.source}` : `${appRoot}/${m.source}`,
      target: m.target,
      readOnly: m.readOnly === true,
      kind:
        m.app === undefined && (app.manifest.files ?? []).some((f) => f.path === m.source)
          ? ("file" as const)
          : ("directory" as const)
    })),
    secretMounts: (c.secrets ?? []).map((s) => ({
      name: s.name,
      source: `${node.secretsDir}/${s.name}`,
      target: s.target ?? `/run/secrets/${s.name}`
    })),
    networks: hostNetwork ? [] : (c.networks ?? [node.network.name]),
    hostNetwork,
    hostPid: c.hostPid === true,
    capAdd: [...(c.capAdd ?? [])].sort(),
    hosts: hostNetwork ? [] : [[node.network.hostAlias, node.network.gateway]],
    stopTimeoutSeconds: Math.ceil(durationMs(c.stopTimeout, defaultStopTimeoutMs) / 1000),
    ...(c.health !== undefined ? { health: c.health } : {}),
    labels: { [labels.app]: app.manifest.id, [labels.container]: c.name }
  }
}

/** Orders an app's containers so each comes after the ones it depends on (manifest order on ties). */
const startOrder = (containers: ReadonlyArray<ContainerManifest>): ReadonlyArray<ContainerManifest> => {
  const out: Array<ContainerManifest> = []
  const placed = new Set<string>()
  let rest = [...containers]
  while (rest.length > 0) {
    const next = rest.find((c) => (c.dependsOn ?? []).every((d) => placed.has(d.container)))
    // A cycle inside one app cannot start in any order; keep manifest order for the rest.
    const pick = next ?? rest[0]!
    out.push(pick)
    placed.add(pick.name)
    rest = rest.filter((c) => c !== pick)
  }
  return out
}

/** The renderer of a file: built in, or its template's. */
export const rendererOf = (file: Pick<DesiredFile, "renderer" | "template">): Renderer =>
  file.template !== undefined
    ? templateRenderer(file.template.file, file.template.text)
    : findRenderer(file.renderer)!

const renderFile = (
  node: NodeConfig,
  app: CatalogApp,
  f: RenderedFile,
  secrets: ReadonlyMap<string, Redacted.Redacted<string>>,
  lookup: Settings.Lookup
): DesiredFile => {
  const template =
    f.template !== undefined ? { file: f.template, text: app.templates.get(f.template) ?? "" } : undefined
  const renderer = rendererOf({
    renderer: f.renderer ?? `template:${f.template}`,
    ...(template ? { template } : {})
  })
  // The manifest names the owner as a container sees it; on the host it is mapped as data dirs are.
  const mapped =
    f.owner === undefined ? undefined : toHost(node.ids ?? rootful, parseUser(f.owner) ?? rootOwner)
  const base = {
    app: app.manifest.id,
    path: `${node.dataRoot}/${app.manifest.id}/${f.path}`,
    renderer: renderer.id,
    ...(template !== undefined ? { template } : {}),
    params: Object.fromEntries(
      Object.entries(f.params ?? {}).map(([k, v]) => [k, Settings.resolve(v, lookup)] as const)
    ),
    secrets: renderer.secrets,
    mode: Number.parseInt(f.mode ?? "0600", 8),
    ...(mapped !== undefined && "owner" in mapped ? { owner: ownerText(mapped.owner) } : {}),
    consumers: f.consumers
  }
  if (mapped !== undefined && "error" in mapped)
    return { ...base, renderError: `cannot own ${f.path}: ${mapped.error}` }
  if (!renderer.secrets.every((s) => secrets.has(s))) return base
  try {
    const content = renderer.render({
      secrets: new Map(renderer.secrets.map((s) => [s, secrets.get(s)!])),
      params: base.params
    })
    return { ...base, content: Redacted.make(content), sha256: sha256Hex(content) }
  } catch (e) {
    const renderError = e instanceof Error ? e.message : String(e)
    if (renderer.failSafe === undefined) return { ...base, renderError }
    const content = renderer.failSafe()
    return {
      ...base,
      renderError,
      failSafe: true,
      content: Redacted.make(content),
      sha256: sha256Hex(content)
    }
  }
}

/** Every catalog app's effective settings: defaults overlaid with the operator's choices. */
export const effectiveSettings = (
  catalog: Catalog,
  choices: Settings.SettingsChoices
): ReadonlyMap<string, Settings.Effective> =>
  new Map(
    catalog.apps.map((a) => [a.manifest.id, Settings.effective(a.manifest.settings, choices[a.manifest.id])])
  )

/**
 * How an app's references resolve: its own settings, or those of the installed app that is or
 * provides the named dependency (the catalog's first provider while none is installed; the app
 * is then blocked anyway).
 */
const settingsLookup =
  (
    catalog: Catalog,
    installed: ReadonlyArray<CatalogApp>,
    effective: ReadonlyMap<string, Settings.Effective>
  ) =>
  (appId: string): Settings.Lookup =>
  (ref) => {
    if (ref.dependency === undefined) return effective.get(appId)?.values[ref.key]
    const provider =
      providersOf(installed, ref.dependency).find((p) => p.manifest.id !== appId) ??
      providersOf(catalog.apps, ref.dependency).find((p) => p.manifest.id !== appId)
    return provider === undefined ? undefined : effective.get(provider.manifest.id)?.values[ref.key]
  }

const dirname = (p: string): string => {
  const i = p.lastIndexOf("/")
  return i <= 0 ? "/" : p.slice(0, i)
}

/** The state dir, when the data root and the secrets share one parent (they always do on a node). */
const stateDirOf = (node: NodeConfig): string | undefined =>
  dirname(node.dataRoot) === dirname(node.secretsDir) ? dirname(node.dataRoot) : undefined

const shownPath = (node: NodeConfig, path: string): string => {
  const stateDir = stateDirOf(node)
  return stateDir !== undefined && path.startsWith(`${stateDir}/`) ? path.slice(stateDir.length + 1) : path
}

const defaultDirMode = 0o755
const rootOwner: Owner = { uid: 0, gid: 0 }

/** The node's own directories; their owner is the one container root maps to. */
const nodeDirectories = (node: NodeConfig): ReadonlyArray<DesiredDirectory> => {
  const stateDir = stateDirOf(node)
  const mapped = toHost(node.ids ?? rootful, rootOwner)
  const owner = "owner" in mapped ? mapped.owner : rootOwner
  const dir = (path: string, mode: number, purpose: string): DesiredDirectory => ({
    path,
    shown: shownPath(node, path),
    root: path,
    mode,
    uid: owner.uid,
    gid: owner.gid,
    purpose
  })
  return [
    ...(stateDir !== undefined ? [dir(stateDir, 0o755, "the node's state dir")] : []),
    dir(node.dataRoot, 0o755, "the apps' data roots"),
    // Canonical secrets: nobody but their owner may even list them.
    dir(node.secretsDir, 0o700, "the node's canonical secrets")
  ].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/**
 * An app's directories: its data root, every directory a container mounts (owned by the uid the
 * writing container runs as), those the manifest declares, and the parents in between (root's).
 * Or why they cannot be owned (a uid beyond the service user's subordinate range).
 */
const appDirectories = (
  node: NodeConfig,
  app: CatalogApp
): { readonly directories: ReadonlyArray<DesiredDirectory> } | { readonly error: string } => {
  const m = app.manifest
  const appRoot = `${node.dataRoot}/${m.id}`
  const files = new Set((m.files ?? []).map((f) => f.path))
  interface Entry {
    mode: number
    owner: Owner | undefined
    purpose: Array<string>
    writer: boolean
  }
  const entries = new Map<string, Entry>()
  entries.set("", { mode: 0o755, owner: rootOwner, purpose: [`the data root of app ${m.id}`], writer: false })
  for (const c of m.containers) {
    for (const mount of c.mounts ?? []) {
      // Another app's data is that app's to create and own; this one only reads it.
      if (files.has(mount.source) || mount.app !== undefined) continue
      const writes = mount.readOnly !== true
      const e = entries.get(mount.source)
      const owner = writes ? (parseUser(c.user) ?? rootOwner) : rootOwner
      const purpose = writes ? `data of container ${c.name}` : `read by container ${c.name}`
      if (e === undefined) {
        entries.set(mount.source, { mode: defaultDirMode, owner, purpose: [purpose], writer: writes })
      } else {
        e.purpose.push(purpose)
        // The first writer owns it (the manifest check refuses writers with different users).
        if (writes && !e.writer) Object.assign(e, { owner, writer: true })
      }
    }
  }
  const byName = new Map(m.containers.map((c) => [c.name, c]))
  for (const d of m.directories ?? []) {
    const owner =
      d.owner === undefined
        ? undefined
        : (parseUser(d.owner) ?? parseUser(byName.get(d.owner)?.user) ?? rootOwner)
    const e = entries.get(d.path)
    const purpose =
      d.owner !== undefined && byName.has(d.owner)
        ? `declared by app ${m.id} for container ${d.owner}`
        : `declared by app ${m.id}`
    entries.set(d.path, {
      mode: d.mode !== undefined ? Number.parseInt(d.mode, 8) : (e?.mode ?? defaultDirMode),
      owner: owner ?? e?.owner,
      purpose: [purpose, ...(e?.purpose ?? [])],
      writer: e?.writer ?? false
    })
  }
  // Parents in between: of directories, and of rendered files (written before their consumers).
  for (const rel of [...entries.keys(), ...[...files].map((f) => dirname(`/${f}`).slice(1))]) {
    let child = rel
    while (child.includes("/")) {
      const parent = child.slice(0, child.lastIndexOf("/"))
      if (!entries.has(parent)) {
        entries.set(parent, { mode: defaultDirMode, owner: rootOwner, purpose: [], writer: false })
      }
      child = parent
    }
    if (child !== "" && !entries.has(child)) {
      entries.set(child, { mode: defaultDirMode, owner: rootOwner, purpose: [], writer: false })
    }
  }
  const sorted = [...entries.keys()].sort()
  const out: Array<DesiredDirectory> = []
  for (const rel of sorted) {
    const e = entries.get(rel)!
    const path = rel === "" ? appRoot : `${appRoot}/${rel}`
    // A declared dir without an owner takes its nearest parent's (container-side) owner.
    let owner = e.owner
    for (let up = rel; owner === undefined && up !== ""; ) {
      up = up.includes("/") ? up.slice(0, up.lastIndexOf("/")) : ""
      owner = entries.get(up)?.owner
    }
    const mapped = toHost(node.ids ?? rootful, owner ?? rootOwner)
    if ("error" in mapped) return { error: `cannot own ${shownPath(node, path)}: ${mapped.error}` }
    out.push({
      app: m.id,
      path,
      shown: shownPath(node, path),
      root: node.dataRoot,
      mode: e.mode,
      uid: mapped.owner.uid,
      gid: mapped.owner.gid,
      purpose: e.purpose.length > 0 ? e.purpose.join(", ") : "parent of the app's data"
    })
  }
  return { directories: out }
}

/**
 * Derives Desired. Pure: `secrets` holds the canonical secrets that exist now (a missing one is
 * planned as EnsureSecret, and the files that need it are rendered on the next pass).
 */
export const make = (input: {
  readonly catalog: Catalog
  readonly node: NodeConfig
  readonly selection: Selection
  readonly secrets: ReadonlyMap<string, Redacted.Redacted<string>>
  /** Images to run instead of the manifests' (upgrades and rollbacks), by app, then container. */
  readonly imageOverrides?: ImageOverrides
  /** The operator's setting choices (`<state-dir>/settings.json`); absent: every default. */
  readonly settings?: Settings.SettingsChoices
}): Desired => {
  const { catalog, node, selection, secrets } = input
  const overrides = input.imageOverrides ?? {}
  const installed = new Set(selection.installed)
  const stopped = new Set(selection.stopped)
  const apps = catalog.apps.filter((a) => installed.has(a.manifest.id))
  const known = new Set(catalog.apps.map((a) => a.manifest.id))
  const effective = effectiveSettings(catalog, input.settings ?? {})
  const lookupFor = settingsLookup(catalog, apps, effective)
  const filesByConsumer = new Map<string, Array<string>>()
  for (const app of apps) {
    for (const f of app.manifest.files ?? []) {
      for (const c of f.consumers) {
        const list = filesByConsumer.get(c) ?? []
        list.push(`${node.dataRoot}/${app.manifest.id}/${f.path}`)
        filesByConsumer.set(c, list)
      }
    }
  }

  const images = new Map<string, ResolvedSource>()
  const rendered = new Map<string, DesiredFile>()
  for (const app of apps) {
    for (const f of app.manifest.files ?? []) {
      const file = renderFile(node, app, f, secrets, lookupFor(app.manifest.id))
      rendered.set(file.path, file)
    }
  }
  const desiredApps = apps.map((app): DesiredApp => {
    const m = app.manifest
    const conflict = apps.find(
      (o) => (m.conflicts ?? []).includes(o.manifest.id) || (o.manifest.conflicts ?? []).includes(m.id)
    )
    const missing = (m.dependencies ?? []).filter(
      (d) => !providersOf(apps, d.app).some((p) => p.manifest.id !== m.id)
    )
    const settings = effective.get(m.id)!
    const settingsProblems = [
      ...settings.problems,
      ...Settings.brokenRules(m.settingRules ?? [], settings.values)
    ]
    const dirs = appDirectories(node, app)
    const blocked =
      conflict !== undefined
        ? `conflicts with installed app ${conflict.manifest.id}`
        : missing.length > 0
          ? `needs ${missing.map((d) => d.app).join(", ")}: install an app that provides it`
          : settingsProblems.length > 0
            ? `${settingsProblems.join("; ")}: change it with archy configure ${m.id}`
            : "error" in dirs
              ? dirs.error
              : undefined
    const appStopped = stopped.has(m.id)
    // App dependencies resolve to the installed providers' containers.
    const appGates: Array<Gate> = (m.dependencies ?? []).flatMap((d) =>
      providersOf(apps, d.app)
        .filter((p) => p.manifest.id !== m.id)
        .flatMap((p) =>
          p.manifest.containers.map((pc) => ({
            container: pc.name,
            condition: d.condition ?? "started",
            because: d.app === p.manifest.id ? d.app : `${d.app} (${p.manifest.id})`
          }))
        )
    )
    const containers = startOrder(m.containers).map((c): DesiredContainer => {
      const source = resolveSource(app, c, overrides[m.id]?.[c.name])
      if (blocked === undefined && !images.has(source.ref)) images.set(source.ref, source)
      const spec = containerSpec(node, app, c, source, lookupFor(m.id))
      const consumes = filesByConsumer.get(c.name) ?? []
      const hashes = consumes.map((p) => rendered.get(p)?.sha256)
      return {
        app: m.id,
        name: c.name,
        source,
        spec,
        specHash: shortHash(spec),
        shouldRun: !appStopped,
        consumes,
        filesHash: hashes.every((h) => h !== undefined) ? shortHash(hashes) : "pending",
        ...(c.restart !== undefined ? { restart: c.restart } : {}),
        waitsFor: [
          ...appGates,
          ...(c.dependsOn ?? []).map((d) => ({
            container: d.container,
            condition: d.condition ?? "started",
            because: d.container
          }))
        ]
      }
    })
    return {
      id: m.id,
      directories: blocked === undefined && "directories" in dirs ? dirs.directories : [],
      files: (m.files ?? []).map((f) => rendered.get(`${node.dataRoot}/${m.id}/${f.path}`)!),
      containers,
      ...(blocked !== undefined ? { blocked } : {})
    }
  })
  const blockedIds = new Set(desiredApps.filter((a) => a.blocked !== undefined).map((a) => a.id))
  return {
    network: node.network,
    directories: nodeDirectories(node),
    secrets: [
      ...new Set(apps.filter((a) => !blockedIds.has(a.manifest.id)).flatMap((a) => a.manifest.secrets ?? []))
    ].sort(),
    images: [...images.values()],
    apps: desiredApps,
    unmanaged: selection.installed.filter((id) => !known.has(id)).sort()
  }
}
