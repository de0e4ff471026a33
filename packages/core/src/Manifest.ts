/**
 * The app manifest: the schema of `apps/<id>/manifest.yml` and the rules that keep a manifest
 * from hurting the node. Decoding is pure (YAML text in, `AppManifest` or a list of
 * `ManifestIssue`s out); reading the catalog directory lives in `Catalog.ts`.
 *
 * Two layers of checks: the Schema decodes shapes and rejects unknown keys; `checkManifest`
 * then enforces the node's safety rules (no privileged mode, no host namespaces unless
 * allow-listed, mounts only under the app's data root, no `..`), each with the path inside the
 * file so a packager can fix it without guessing.
 */
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Yaml from "yaml"
import { parseUser } from "./Ownership.ts"
import { findRenderer } from "./Render/Renderers.ts"
import * as Settings from "./Settings.ts"

const Id = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9-]{0,62}$/, {
    expected: "a lowercase id of letters, digits and dashes (at most 63 characters)"
  })
)
const ContainerName = Schema.String.check(
  Schema.isPattern(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, { expected: "a podman container name" })
)
/** Durations are written the way operators write them: `500ms`, `30s`, `10m`, `1h`. */
const DurationText = Schema.String.check(
  Schema.isPattern(/^[0-9]+(ms|s|m|h)$/, { expected: "a duration such as 500ms, 30s, 10m or 1h" })
)
/** Milliseconds of a manifest duration (`500ms`, `30s`, `10m`, `1h`), or the fallback when absent. */
export const durationMs = (text: string | undefined, fallbackMs: number): number => {
  if (text === undefined) return fallbackMs
  const m = /^([0-9]+)(ms|s|m|h)$/.exec(text)
  if (m === null) return fallbackMs
  const n = Number(m[1])
  return m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : m[2] === "m" ? n * 60_000 : n * 3_600_000
}
const FileMode = Schema.String.check(
  Schema.isPattern(/^0[0-7]{3}$/, { expected: "an octal file mode such as 0600 or 0644" })
)
const Owner = Schema.String.check(
  Schema.isPattern(/^[0-9]+:[0-9]+$/, { expected: "a numeric uid:gid such as 1000:1000" })
)
const Port = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))
/** `${settings.rpcPort}`: a port taken from an int setting (see Settings.ts). */
const PortReference = Schema.String.check(
  Schema.isPattern(/^\$\{settings\.[A-Za-z0-9_]+\}$/, {
    expected: `a port number or a reference to an int setting such as \${settings.rpcPort}`
  })
)
const PortOrReference = Schema.Union([Port, PortReference])

/** Where a container's image comes from: a registry reference, or a local build. */
export const BuildSource = Schema.Struct({
  /** Build context, relative to the app's directory in the catalog. */
  context: Schema.String,
  containerfile: Schema.optionalKey(Schema.String)
})
export type BuildSource = typeof BuildSource.Type

export const PortMapping = Schema.Struct({
  host: PortOrReference,
  container: PortOrReference,
  protocol: Schema.optionalKey(Schema.Literals(["tcp", "udp"])),
  /** Ports bind to 127.0.0.1 unless declared public (reachable from the LAN). */
  public: Schema.optionalKey(Schema.Boolean)
})
export type PortMapping = typeof PortMapping.Type

export const Mount = Schema.Struct({
  /**
   * Read another app's data instead of this one's: an app id named in `dependencies` (lnd's
   * macaroons and TLS certificate for a Lightning UI). Such mounts must be read-only.
   */
  app: Schema.optionalKey(Id),
  /** Path relative to the app's data root on the host (or to `app`'s data root). */
  source: Schema.String,
  /** Absolute path inside the container. */
  target: Schema.String,
  readOnly: Schema.optionalKey(Schema.Boolean)
})
export type Mount = typeof Mount.Type

export const SecretUse = Schema.Struct({
  name: Id,
  /** Only mounted files: env and args are readable through `podman inspect`. */
  as: Schema.optionalKey(Schema.Literal("file")),
  /** Absolute path inside the container; defaults to /run/secrets/<name>. */
  target: Schema.optionalKey(Schema.String)
})
export type SecretUse = typeof SecretUse.Type

export const HealthCheck = Schema.Struct({
  command: Schema.NonEmptyArray(Schema.String),
  interval: Schema.optionalKey(DurationText),
  timeout: Schema.optionalKey(DurationText),
  /** Failures during the start period count as progress (bitcoind loading its index). */
  startPeriod: Schema.optionalKey(DurationText),
  retries: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 })))
})
export type HealthCheck = typeof HealthCheck.Type

export const RestartPolicy = Schema.Struct({
  policy: Schema.Literals(["always", "on-failure", "never"]),
  backoffInitial: Schema.optionalKey(DurationText),
  backoffMax: Schema.optionalKey(DurationText),
  /** Running this long without a crash resets the backoff. */
  resetAfter: Schema.optionalKey(DurationText)
})
export type RestartPolicy = typeof RestartPolicy.Type

export const ContainerDependency = Schema.Struct({
  container: ContainerName,
  condition: Schema.optionalKey(Schema.Literals(["started", "healthy"]))
})

export const PreStartHook = Schema.Struct({
  /** Rendered files (by path) that must be written before this container starts. */
  render: Schema.NonEmptyArray(Schema.String)
})
export type PreStartHook = typeof PreStartHook.Type

/** Linux capabilities a manifest may add; anything broader is refused. */
export const allowedCapabilities = [
  "CHOWN",
  "DAC_OVERRIDE",
  "FOWNER",
  "NET_BIND_SERVICE",
  "SETGID",
  "SETUID"
] as const

/** Capabilities only apps on the policy's `netAdminAllowList` may add (a VPN's own interface). */
export const systemCapabilities = ["NET_ADMIN"] as const

export const ContainerManifest = Schema.Struct({
  name: ContainerName,
  image: Schema.optionalKey(Schema.String),
  build: Schema.optionalKey(BuildSource),
  command: Schema.optionalKey(Schema.Array(Schema.String)),
  entrypoint: Schema.optionalKey(Schema.Array(Schema.String)),
  user: Schema.optionalKey(Schema.String),
  workdir: Schema.optionalKey(Schema.String),
  env: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  ports: Schema.optionalKey(Schema.Array(PortMapping)),
  mounts: Schema.optionalKey(Schema.Array(Mount)),
  networks: Schema.optionalKey(Schema.Array(Id)),
  secrets: Schema.optionalKey(Schema.Array(SecretUse)),
  health: Schema.optionalKey(HealthCheck),
  stopTimeout: Schema.optionalKey(DurationText),
  restart: Schema.optionalKey(RestartPolicy),
  dependsOn: Schema.optionalKey(Schema.Array(ContainerDependency)),
  preStart: Schema.optionalKey(Schema.Array(PreStartHook)),
  capAdd: Schema.optionalKey(Schema.Array(Schema.String)),
  privileged: Schema.optionalKey(Schema.Boolean),
  hostNetwork: Schema.optionalKey(Schema.Boolean),
  hostPid: Schema.optionalKey(Schema.Boolean)
})
export type ContainerManifest = typeof ContainerManifest.Type

export const RenderedFile = Schema.Struct({
  /** Path relative to the app's data root on the host. */
  path: Schema.String,
  /** A renderer built into archy (`bitcoin-conf`), or ... */
  renderer: Schema.optionalKey(Schema.String),
  /** ... a template file next to the manifest, with `{{secret:…}}`/`{{param:…}}` placeholders. */
  template: Schema.optionalKey(Schema.String),
  params: Schema.optionalKey(
    Schema.Record(Schema.String, Schema.Union([Schema.String, Schema.Number, Schema.Boolean]))
  ),
  mode: Schema.optionalKey(FileMode),
  owner: Schema.optionalKey(Owner),
  /** Containers (by name, in any app) restarted when the bytes change. */
  consumers: Schema.Array(ContainerName)
})
export type RenderedFile = typeof RenderedFile.Type

/**
 * A directory the app needs beyond its mounts, e.g. Tor's hidden-service dir, which Tor refuses
 * unless it is 0700 and owned by Tor's own uid.
 */
export const DirectorySpec = Schema.Struct({
  /** Path relative to the app's data root on the host. */
  path: Schema.String,
  /** Default 0755. */
  mode: Schema.optionalKey(FileMode),
  /**
   * A container of this app (the dir belongs to the uid it runs as) or a container-side numeric
   * `uid[:gid]`; mapped to the host as the container's own files are. Default: the owner of the
   * nearest enclosing directory.
   */
  owner: Schema.optionalKey(Schema.String)
})
export type DirectorySpec = typeof DirectorySpec.Type

export const AppDependency = Schema.Struct({
  /** An app id, or a capability another app provides (`bitcoind`). */
  app: Id,
  condition: Schema.optionalKey(Schema.Literals(["started", "healthy"]))
})
export type AppDependency = typeof AppDependency.Type

export const categories = [
  "bitcoin",
  "lightning",
  "explorer",
  "payments",
  "interface",
  "files",
  "network",
  "social",
  "system"
] as const

export const AppManifest = Schema.Struct({
  id: Id,
  name: Schema.NonEmptyString,
  version: Schema.NonEmptyString,
  description: Schema.NonEmptyString,
  category: Schema.Literals(categories),
  defaultInstalled: Schema.optionalKey(Schema.Boolean),
  provides: Schema.optionalKey(Schema.Array(Id)),
  conflicts: Schema.optionalKey(Schema.Array(Id)),
  dependencies: Schema.optionalKey(Schema.Array(AppDependency)),
  /** Canonical secrets this app consumes; the SecretStore generates each once. */
  secrets: Schema.optionalKey(Schema.Array(Id)),
  files: Schema.optionalKey(Schema.Array(RenderedFile)),
  /** Directories set up before the first container, with their mode and owner. */
  directories: Schema.optionalKey(Schema.Array(DirectorySpec)),
  containers: Schema.NonEmptyArray(ContainerManifest),
  /** Typed settings the operator may change (`archy configure`); see Settings.ts. */
  settings: Schema.optionalKey(Settings.SettingDecls),
  /** Rules between this app's settings, checked on every change. */
  settingRules: Schema.optionalKey(Schema.Array(Settings.SettingRule))
})
export type AppManifest = typeof AppManifest.Type

/** One problem in one manifest: which file, where inside it, and what was expected. */
export interface ManifestIssue {
  readonly file: string
  readonly path: string
  readonly message: string
}

export const formatIssue = (issue: ManifestIssue): string =>
  issue.path === "" ? `${issue.file}: ${issue.message}` : `${issue.file}: at ${issue.path}: ${issue.message}`

/** Secrets of the node itself (the daemon's API token): no manifest may consume them. */
export const reservedSecrets: ReadonlyArray<string> = ["api-token"]

/** Apps allowed to share the host's network or PID namespace (none by default). */
export interface ManifestPolicy {
  readonly hostNamespaceAllowList: ReadonlyArray<string>
  /** Apps allowed to add NET_ADMIN (the VPN, for its own WireGuard interface); none if absent. */
  readonly netAdminAllowList?: ReadonlyArray<string>
}
export const defaultPolicy: ManifestPolicy = { hostNamespaceAllowList: [], netAdminAllowList: ["wireguard"] }

/** `["containers", 0, "mounts"]` -> `containers[0].mounts`, as packagers read paths. */
export const pathText = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, key) =>
      typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`,
    ""
  )

const standardFormatter = SchemaIssue.makeFormatterStandardSchemaV1()
const decodeManifest = Schema.decodeUnknownResult(AppManifest)

/**
 * Decodes one manifest's YAML text. `file` names it in every issue; `dirName` is the catalog
 * directory it sits in, which must equal its id.
 */
export const parseManifest = (
  file: string,
  text: string,
  dirName: string,
  policy: ManifestPolicy = defaultPolicy
): { readonly manifest: AppManifest } | { readonly issues: ReadonlyArray<ManifestIssue> } => {
  const lines = new Yaml.LineCounter()
  const doc = Yaml.parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines })
  if (doc.errors.length > 0) {
    return {
      issues: doc.errors.map((e) => ({
        file,
        path: `line ${lines.linePos(e.pos[0]).line}, column ${lines.linePos(e.pos[0]).col}`,
        message: `invalid YAML: ${e.message.split("\n")[0]}`
      }))
    }
  }
  const decoded = decodeManifest(doc.toJS(), { onExcessProperty: "error", errors: "all" })
  if (decoded._tag === "Failure") {
    const { issues } = standardFormatter(decoded.failure.issue)
    return {
      issues: issues.map((i) => ({
        file,
        path: pathText((i.path ?? []).map((p) => (typeof p === "object" ? p.key : p))),
        message: i.message === "Expected no excess property" ? "unknown key" : i.message
      }))
    }
  }
  const issues = checkManifest(decoded.success, dirName, policy).map((i) => ({ file, ...i }))
  return issues.length > 0 ? { issues } : { manifest: decoded.success }
}

/** A relative path that stays inside its root: no absolute path, no `..`, no empty segment. */
export const isContainedRelativePath = (p: string): boolean =>
  p.length > 0 && !p.startsWith("/") && p.split("/").every((seg) => seg !== ".." && seg !== "" && seg !== ".")

const isCleanAbsolutePath = (p: string): boolean =>
  p.startsWith("/") && p.split("/").every((seg) => seg !== ".." && seg !== ".")

/** The node's safety rules for one decoded manifest; paths are relative to the file. */
export const checkManifest = (
  m: AppManifest,
  dirName: string,
  policy: ManifestPolicy
): Array<{ readonly path: string; readonly message: string }> => {
  const out: Array<{ path: string; message: string }> = []
  const add = (path: string, message: string) => out.push({ path, message })
  if (m.id !== dirName) add("id", `expected the directory name "${dirName}", got "${m.id}"`)
  ;(m.secrets ?? []).forEach((name, i) => {
    if (reservedSecrets.includes(name))
      add(`secrets[${i}]`, `secret "${name}" is the node's own and cannot be given to an app`)
  })
  const secrets = new Set(m.secrets ?? [])
  const containerNames = new Set<string>()
  const filePaths = new Set((m.files ?? []).map((f) => f.path))
  const hostNamespaceAllowed = policy.hostNamespaceAllowList.includes(m.id)

  m.containers.forEach((c, i) => {
    const at = `containers[${i}]`
    if (containerNames.has(c.name)) add(`${at}.name`, `container name "${c.name}" is used twice`)
    containerNames.add(c.name)
    if ((c.image === undefined) === (c.build === undefined)) {
      add(at, "expected exactly one of image or build")
    }
    if (
      c.image !== undefined &&
      !/^[a-z0-9.-]+(:[0-9]+)?\/[a-z0-9._/-]+(:[A-Za-z0-9._-]+)?(@sha256:[a-f0-9]{64})?$/.test(c.image)
    ) {
      add(
        `${at}.image`,
        `expected a fully qualified image reference (registry/name:tag[@sha256:...]), got "${c.image}"`
      )
    }
    if (
      c.image !== undefined &&
      !c.image.includes("@") &&
      !/:[A-Za-z0-9._-]+$/.test(c.image.split("/").pop() ?? "")
    ) {
      add(`${at}.image`, "expected a pinned tag or digest, not an implicit latest")
    }
    if (c.build !== undefined) {
      if (!isContainedRelativePath(c.build.context) && c.build.context !== ".") {
        add(`${at}.build.context`, `expected a path inside the app's directory, got "${c.build.context}"`)
      }
      if (c.build.containerfile !== undefined && !isContainedRelativePath(c.build.containerfile)) {
        add(
          `${at}.build.containerfile`,
          `expected a path inside the build context, got "${c.build.containerfile}"`
        )
      }
    }
    if (c.privileged === true) add(`${at}.privileged`, "privileged containers are not allowed on the node")
    if (c.hostNetwork === true && !hostNamespaceAllowed) {
      add(
        `${at}.hostNetwork`,
        `the host network namespace is only allowed for system apps; "${m.id}" is not one`
      )
    }
    if (c.hostPid === true && !hostNamespaceAllowed) {
      add(`${at}.hostPid`, `the host PID namespace is only allowed for system apps; "${m.id}" is not one`)
    }
    ;(c.capAdd ?? []).forEach((cap, j) => {
      if (
        (systemCapabilities as ReadonlyArray<string>).includes(cap) &&
        (policy.netAdminAllowList ?? []).includes(m.id)
      ) {
        return
      }
      if (!(allowedCapabilities as ReadonlyArray<string>).includes(cap)) {
        add(
          `${at}.capAdd[${j}]`,
          `capability ${cap} is not allowed (allowed: ${allowedCapabilities.join(", ")})`
        )
      }
    })
    ;(c.mounts ?? []).forEach((mount, j) => {
      if (!isContainedRelativePath(mount.source)) {
        add(
          `${at}.mounts[${j}].source`,
          `expected a path inside the app's data root (relative, no ".."), got "${mount.source}"`
        )
      }
      if (mount.app !== undefined) {
        if (!(m.dependencies ?? []).some((d) => d.app === mount.app)) {
          add(
            `${at}.mounts[${j}].app`,
            `app "${mount.app}" must be one of this app's dependencies to mount its data`
          )
        }
        if (mount.readOnly !== true) {
          add(`${at}.mounts[${j}].readOnly`, "another app's data can only be mounted read-only")
        }
      }
      if (!isCleanAbsolutePath(mount.target)) {
        add(
          `${at}.mounts[${j}].target`,
          `expected an absolute container path without "..", got "${mount.target}"`
        )
      }
    })
    ;(c.secrets ?? []).forEach((s, j) => {
      if (!secrets.has(s.name))
        add(`${at}.secrets[${j}].name`, `secret "${s.name}" is not declared in secrets`)
      if (s.target !== undefined && !isCleanAbsolutePath(s.target)) {
        add(
          `${at}.secrets[${j}].target`,
          `expected an absolute container path without "..", got "${s.target}"`
        )
      }
    })
    ;(c.preStart ?? []).forEach((hook, j) => {
      hook.render.forEach((p, k) => {
        if (!filePaths.has(p))
          add(`${at}.preStart[${j}].render[${k}]`, `"${p}" is not one of this app's files`)
      })
    })
  })
  m.containers.forEach((c, i) => {
    ;(c.dependsOn ?? []).forEach((d, j) => {
      if (!containerNames.has(d.container)) {
        add(`containers[${i}].dependsOn[${j}].container`, `no container "${d.container}" in this app`)
      } else if (d.container === c.name) {
        add(`containers[${i}].dependsOn[${j}].container`, "a container cannot depend on itself")
      }
    })
  })
  ;(m.files ?? []).forEach((f, i) => {
    const at = `files[${i}]`
    if (!isContainedRelativePath(f.path)) {
      add(`${at}.path`, `expected a path inside the app's data root (relative, no ".."), got "${f.path}"`)
    }
    if ((f.renderer === undefined) === (f.template === undefined)) {
      add(at, "expected exactly one of renderer or template")
      return
    }
    if (f.template !== undefined) {
      // Which template files exist, and what their placeholders need, is checked by the catalog.
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(f.template) || f.template === "manifest.yml") {
        add(`${at}.template`, `expected a file name next to the manifest, got "${f.template}"`)
      }
      return
    }
    const renderer = f.renderer === undefined ? undefined : findRenderer(f.renderer)
    if (renderer === undefined) {
      add(`${at}.renderer`, `unknown renderer "${f.renderer}"`)
    } else {
      for (const s of renderer.secrets) {
        if (!secrets.has(s))
          add(`${at}.renderer`, `renderer ${f.renderer} needs secret "${s}", not declared in secrets`)
      }
    }
  })
  for (const issue of checkSettings(m)) add(issue.path, issue.message)
  checkDirectories(m, filePaths, add)
  ;(m.dependencies ?? []).forEach((d, i) => {
    if (d.app === m.id) add(`dependencies[${i}].app`, "an app cannot depend on itself")
    else if ((m.provides ?? []).includes(d.app)) {
      add(`dependencies[${i}].app`, `an app cannot depend on "${d.app}", which it provides itself`)
    }
  })
  return out
}

/** A place in a manifest where `${...}` references are resolved. */
interface ReferenceSite {
  readonly path: string
  readonly value: string | number | boolean
  /** Params are never shell text: every `${...}` there must be a setting reference. */
  readonly strict: boolean
  readonly port: boolean
}

/** Every place references may appear: file params, container env, command, entrypoint, ports. */
export const referenceSites = (m: AppManifest): ReadonlyArray<ReferenceSite> => [
  ...(m.files ?? []).flatMap((f, i) =>
    Object.entries(f.params ?? {}).map(([k, value]) => ({
      path: `files[${i}].params.${k}`,
      value,
      strict: true,
      port: false
    }))
  ),
  ...m.containers.flatMap((c, i) => [
    ...Object.entries(c.env ?? {}).map(([k, value]) => ({
      path: `containers[${i}].env.${k}`,
      value,
      strict: false,
      port: false
    })),
    ...(c.command ?? []).map((value, j) => ({
      path: `containers[${i}].command[${j}]`,
      value,
      strict: false,
      port: false
    })),
    ...(c.entrypoint ?? []).map((value, j) => ({
      path: `containers[${i}].entrypoint[${j}]`,
      value,
      strict: false,
      port: false
    })),
    ...(c.ports ?? []).flatMap((p, j) => [
      { path: `containers[${i}].ports[${j}].host`, value: p.host, strict: true, port: true },
      { path: `containers[${i}].ports[${j}].container`, value: p.container, strict: true, port: true }
    ])
  ])
]

/**
 * The settings' own consistency (defaults fit their declarations and the rules) and every
 * reference: to a declared setting of this app, or to a dependency's (whose providers the
 * catalog checks).
 */
const checkSettings = (m: AppManifest): Array<{ readonly path: string; readonly message: string }> => {
  const out: Array<{ path: string; message: string }> = []
  const add = (path: string, message: string) => out.push({ path, message })
  const decls = m.settings ?? {}
  for (const [key, decl] of Object.entries(decls)) {
    const at = `settings.${key}`
    if (decl.type === "int" && decl.min !== undefined && decl.max !== undefined && decl.min > decl.max)
      add(at, `min ${decl.min} is above max ${decl.max}`)
    if (decl.type === "string" && decl.pattern !== undefined) {
      try {
        new RegExp(decl.pattern)
      } catch {
        add(`${at}.pattern`, `not a valid regular expression: ${decl.pattern}`)
        continue
      }
    }
    const problem = Settings.checkValue(decl, decl.default)
    if (problem !== undefined) add(`${at}.default`, problem)
  }
  ;(m.settingRules ?? []).forEach((rule, i) => {
    for (const part of ["when", "require"] as const) {
      for (const [key, condition] of Object.entries(rule[part])) {
        const at = `settingRules[${i}].${part}.${key}`
        const decl = decls[key]
        if (decl === undefined) add(at, `setting "${key}" is not declared in settings`)
        else if (typeof condition === "object") {
          if (decl.type !== "int") add(at, `a range fits only an int setting; ${key} is ${decl.type}`)
        } else {
          const problem = Settings.checkValue(decl, condition)
          if (problem !== undefined) add(at, problem)
        }
      }
    }
  })
  const defaults = Settings.effective(decls, {}).values
  if (out.length === 0) {
    for (const broken of Settings.brokenRules(m.settingRules ?? [], defaults))
      add("settingRules", `the defaults break a rule: ${broken}`)
  }
  const dependencies = new Set((m.dependencies ?? []).map((d) => d.app))
  for (const site of referenceSites(m)) {
    if (typeof site.value !== "string") continue
    for (const { raw, ref } of Settings.referencesIn(site.value)) {
      if (ref === undefined || (ref === "shell" && site.strict)) {
        add(
          site.path,
          `"${raw}" is not a setting reference (expected \${settings.KEY} or \${DEP.settings.KEY})`
        )
      } else if (ref === "shell") {
      } else if (ref.dependency === undefined) {
        const decl = decls[ref.key]
        if (decl === undefined) add(site.path, `${raw} names setting "${ref.key}", not declared in settings`)
        else if (site.port && (decl.type !== "int" || (decl.min ?? 0) < 1 || (decl.max ?? 65536) > 65535))
          add(site.path, `${raw} must be an int setting with min >= 1 and max <= 65535 to be a port`)
      } else if (!dependencies.has(ref.dependency)) {
        add(site.path, `${raw} names "${ref.dependency}", which is not one of this app's dependencies`)
      }
    }
  }
  return out
}

/**
 * Directory ownership: each data dir gets one owner, the numeric user of the containers that
 * write it, so a user name (resolvable only inside the image) cannot own one, and two writers
 * with different users must say which one owns it under `directories`.
 */
const checkDirectories = (
  m: AppManifest,
  filePaths: ReadonlySet<string>,
  add: (path: string, message: string) => void
) => {
  const declared = new Map<string, DirectorySpec>()
  const byName = new Map(m.containers.map((c) => [c.name, c]))
  ;(m.directories ?? []).forEach((d, i) => {
    const at = `directories[${i}]`
    if (!isContainedRelativePath(d.path)) {
      add(`${at}.path`, `expected a path inside the app's data root (relative, no ".."), got "${d.path}"`)
    } else if (filePaths.has(d.path)) {
      add(`${at}.path`, `"${d.path}" is one of this app's rendered files, not a directory`)
    } else if (declared.has(d.path)) {
      add(`${at}.path`, `directory "${d.path}" is declared twice`)
    }
    declared.set(d.path, d)
    if (d.owner !== undefined && parseUser(d.owner) === undefined) {
      const c = byName.get(d.owner)
      if (c === undefined) {
        add(`${at}.owner`, `expected a container of this app or a numeric uid[:gid], got "${d.owner}"`)
      } else if (parseUser(c.user) === undefined) {
        add(
          `${at}.owner`,
          `container ${c.name} runs as user "${c.user}", a name only its image can resolve: give it a numeric uid[:gid]`
        )
      }
    }
  })
  const writers = new Map<string, { readonly name: string; readonly user: string }>()
  m.containers.forEach((c, i) => {
    ;(c.mounts ?? []).forEach((mount, j) => {
      if (mount.readOnly === true || filePaths.has(mount.source) || !isContainedRelativePath(mount.source))
        return
      const user = parseUser(c.user)
      if (user === undefined) {
        if (declared.get(mount.source)?.owner === undefined) {
          add(
            `containers[${i}].user`,
            `expected a numeric uid[:gid] such as 1000:1000 (a user name only the image can resolve), since it writes to "${mount.source}" and the node must give that directory to its uid`
          )
        }
        return
      }
      const first = writers.get(mount.source)
      const text = `${user.uid}:${user.gid}`
      if (first === undefined) writers.set(mount.source, { name: c.name, user: text })
      else if (first.user !== text && declared.get(mount.source)?.owner === undefined) {
        add(
          `containers[${i}].mounts[${j}].source`,
          `"${mount.source}" is also written by container ${first.name} as ${first.user}, this one runs as ${text}: declare its owner under directories`
        )
      }
    })
  })
}
