/**
 * The app catalog: every `apps/<id>/manifest.yml` of a directory, checked one by one and then
 * against each other (unique container names and host ports, dependencies that resolve, no
 * cycles). A bad manifest is reported and left out; every other app still loads.
 *
 * Reading the directory goes through Effect's `FileSystem`; everything after the read is pure
 * (`catalogFromSources`), so tests and the simulation can build catalogs from strings.
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Path from "effect/Path"
import {
  type AppManifest,
  defaultPolicy,
  type ManifestIssue,
  type ManifestPolicy,
  parseManifest,
  referenceSites
} from "./Manifest.ts"
import { checkTemplate } from "./Render/Template.ts"
import * as Settings from "./Settings.ts"

/** A manifest that passed every check, with where it came from. */
export interface CatalogApp {
  readonly manifest: AppManifest
  /** The manifest file, as named in errors. */
  readonly file: string
  /** The app's directory in the catalog (build contexts are relative to it). */
  readonly dir: string
  /** The text of each template its files name, by file name. */
  readonly templates: ReadonlyMap<string, string>
}

export interface Catalog {
  /** Valid apps in dependency order (an app comes after everything it depends on; ties by id). */
  readonly apps: ReadonlyArray<CatalogApp>
  readonly issues: ReadonlyArray<ManifestIssue>
}

/** One manifest's text, as read from disk. */
export interface ManifestSource {
  readonly file: string
  readonly dir: string
  readonly dirName: string
  readonly text: string
  /** The other files next to the manifest (templates), by file name. */
  readonly templates?: ReadonlyMap<string, string>
}

/** Whether either app names the other in `conflicts`: such apps are never installed together. */
export const conflictsWith = (a: AppManifest, b: AppManifest): boolean =>
  (a.conflicts ?? []).includes(b.id) || (b.conflicts ?? []).includes(a.id)

/** Each template a manifest names must exist next to it, with placeholders the entry can fill. */
const templateIssues = (
  source: ManifestSource,
  manifest: AppManifest
): { readonly issues: ReadonlyArray<ManifestIssue>; readonly templates: ReadonlyMap<string, string> } => {
  const issues: Array<ManifestIssue> = []
  const templates = new Map<string, string>()
  ;(manifest.files ?? []).forEach((f, i) => {
    if (f.template === undefined) return
    const path = `files[${i}].template`
    const text = source.templates?.get(f.template)
    if (text === undefined) {
      issues.push({
        file: source.file,
        path,
        message: `no template file "${f.template}" next to the manifest`
      })
      return
    }
    templates.set(f.template, text)
    for (const problem of checkTemplate(text, { secrets: manifest.secrets ?? [], params: f.params ?? {} })) {
      issues.push({ file: source.file, path, message: `${f.template}, ${problem}` })
    }
  })
  return { issues, templates }
}

/** The apps that satisfy a dependency name: the app itself, or every app providing it. */
export const providersOf = (apps: ReadonlyArray<CatalogApp>, name: string): ReadonlyArray<CatalogApp> =>
  apps.filter((a) => a.manifest.id === name || (a.manifest.provides ?? []).includes(name))

/** Pure: checks manifests one by one, then across apps, and orders what survives. */
export const catalogFromSources = (
  sources: ReadonlyArray<ManifestSource>,
  policy: ManifestPolicy = defaultPolicy
): Catalog => {
  const issues: Array<ManifestIssue> = []
  let apps: Array<CatalogApp> = []
  for (const source of [...sources].sort((a, b) => a.dirName.localeCompare(b.dirName))) {
    const parsed = parseManifest(source.file, source.text, source.dirName, policy)
    if ("issues" in parsed) {
      issues.push(...parsed.issues)
      continue
    }
    const checked = templateIssues(source, parsed.manifest)
    if (checked.issues.length > 0) issues.push(...checked.issues)
    else
      apps.push({
        manifest: parsed.manifest,
        file: source.file,
        dir: source.dir,
        templates: checked.templates
      })
  }

  // Cross-app claims: the first app (by id) keeps a contested name or port. Apps that conflict
  // with each other are never installed together, so they may claim the same ones (Bitcoin Knots
  // and Bitcoin Core both serve 8332/8333).
  const containerOwners = new Map<string, Array<AppManifest>>()
  const portOwners = new Map<string, Array<AppManifest>>()
  const clashing = (owners: ReadonlyArray<AppManifest> | undefined, app: AppManifest) =>
    (owners ?? []).find((o) => !conflictsWith(o, app))?.id
  const rejected = new Set<string>()
  for (const app of apps) {
    // Collect this app's claims first, and register them only if the app is accepted, so a
    // rejected app never blocks a later one.
    const problems: Array<ManifestIssue> = []
    const names = new Map<string, string>()
    const ports = new Map<string, string>()
    app.manifest.containers.forEach((c, i) => {
      const owner = clashing(containerOwners.get(c.name), app.manifest)
      if (owner !== undefined) {
        problems.push({
          file: app.file,
          path: `containers[${i}].name`,
          message: `container name "${c.name}" is already used by app ${owner}`
        })
      }
      names.set(c.name, app.manifest.id)
      // A port taken from a setting is claimed at its default here; a changed one is checked
      // when the operator changes it.
      const defaults = Settings.effective(app.manifest.settings, {}).values
      ;(c.ports ?? []).forEach((p, j) => {
        const host = Settings.resolve(p.host, (ref) => defaults[ref.key])
        const key = `${p.protocol ?? "tcp"}/${host}`
        const path = `containers[${i}].ports[${j}].host`
        const portApp = clashing(portOwners.get(key), app.manifest)
        const inThisApp = ports.get(key)
        if (portApp !== undefined) {
          problems.push({
            file: app.file,
            path,
            message: `host port ${key} is already used by app ${portApp}`
          })
        } else if (inThisApp !== undefined) {
          problems.push({
            file: app.file,
            path,
            message: `host port ${key} is already used by ${inThisApp} in this app`
          })
        }
        ports.set(key, `container ${c.name}`)
      })
    })
    if (problems.length > 0) {
      issues.push(...problems)
      rejected.add(app.manifest.id)
      continue
    }
    for (const name of names.keys())
      containerOwners.set(name, [...(containerOwners.get(name) ?? []), app.manifest])
    for (const key of ports.keys()) portOwners.set(key, [...(portOwners.get(key) ?? []), app.manifest])
  }
  apps = apps.filter((a) => !rejected.has(a.manifest.id))

  // Drop apps whose dependencies or file consumers do not resolve, until nothing changes
  // (an app that depends on a rejected app is rejected too, with the reason).
  for (let changed = true; changed; ) {
    changed = false
    const containers = new Set(apps.flatMap((a) => a.manifest.containers.map((c) => c.name)))
    for (const app of apps) {
      const problems: Array<ManifestIssue> = []
      ;(app.manifest.dependencies ?? []).forEach((d, i) => {
        if (providersOf(apps, d.app).length === 0) {
          problems.push({
            file: app.file,
            path: `dependencies[${i}].app`,
            message: `no valid app is or provides "${d.app}"`
          })
        }
      })
      for (const site of referenceSites(app.manifest)) {
        if (typeof site.value !== "string") continue
        for (const { raw, ref } of Settings.referencesIn(site.value)) {
          if (ref === undefined || ref === "shell" || ref.dependency === undefined) continue
          const { dependency, key } = ref
          for (const provider of providersOf(apps, dependency)) {
            if (provider.manifest.id !== app.manifest.id && provider.manifest.settings?.[key] === undefined) {
              problems.push({
                file: app.file,
                path: site.path,
                message: `${raw}: app ${provider.manifest.id} provides "${dependency}" but declares no setting "${key}"`
              })
            }
          }
        }
      }
      ;(app.manifest.files ?? []).forEach((f, i) => {
        f.consumers.forEach((c, j) => {
          if (!containers.has(c)) {
            problems.push({
              file: app.file,
              path: `files[${i}].consumers[${j}]`,
              message: `no container "${c}" in the catalog`
            })
          }
        })
      })
      if (problems.length > 0) {
        issues.push(...problems)
        rejected.add(app.manifest.id)
        changed = true
      }
    }
    apps = apps.filter((a) => !rejected.has(a.manifest.id))
  }

  const ordered = orderByDependencies(apps)
  for (const cycle of ordered.cycles) {
    const first = cycle[0]!
    issues.push({
      file: first.file,
      path: "dependencies",
      message: `dependency cycle: ${[...cycle, first].map((a) => a.manifest.id).join(" -> ")}`
    })
  }
  const placed = new Set(ordered.apps.map((a) => a.manifest.id))
  const cyclic = new Set(ordered.cycles.flat().map((a) => a.manifest.id))
  for (const app of apps) {
    if (!placed.has(app.manifest.id) && !cyclic.has(app.manifest.id)) {
      issues.push({
        file: app.file,
        path: "dependencies",
        message: "depends on an app that is on a dependency cycle"
      })
    }
  }
  return { apps: ordered.apps, issues }
}

/**
 * Kahn's algorithm with the ready set kept sorted by id, so the order is deterministic. Apps
 * left over sit on or behind a cycle; each cycle is reported once and its apps left out.
 */
export const orderByDependencies = (
  apps: ReadonlyArray<CatalogApp>
): {
  readonly apps: ReadonlyArray<CatalogApp>
  readonly cycles: ReadonlyArray<ReadonlyArray<CatalogApp>>
} => {
  const byId = new Map(apps.map((a) => [a.manifest.id, a]))
  const deps = new Map(
    apps.map((a) => [
      a.manifest.id,
      new Set(
        (a.manifest.dependencies ?? []).flatMap((d) => providersOf(apps, d.app).map((p) => p.manifest.id))
      )
    ])
  )
  const out: Array<CatalogApp> = []
  const done = new Set<string>()
  const ready = apps.filter((a) => deps.get(a.manifest.id)!.size === 0).map((a) => a.manifest.id)
  while (ready.length > 0) {
    ready.sort()
    const id = ready.shift()!
    done.add(id)
    out.push(byId.get(id)!)
    for (const [other, ds] of deps) {
      if (!done.has(other) && !ready.includes(other) && ds.has(id) && [...ds].every((d) => done.has(d))) {
        ready.push(other)
      }
    }
  }
  const cycles: Array<Array<CatalogApp>> = []
  const onCycle = new Set<string>()
  for (const a of apps) {
    if (done.has(a.manifest.id) || onCycle.has(a.manifest.id)) continue
    // Walk unfinished dependencies until an id repeats: that loop is a cycle.
    const trail: Array<string> = []
    let at: string | undefined = a.manifest.id
    while (at !== undefined && !trail.includes(at)) {
      trail.push(at)
      at = [...deps.get(at)!].sort().find((d) => !done.has(d))
    }
    if (at === undefined) continue
    const cycle = trail.slice(trail.indexOf(at))
    if (cycle.some((id) => onCycle.has(id))) continue
    for (const id of cycle) onCycle.add(id)
    cycles.push(cycle.map((id) => byId.get(id)!))
  }
  return { apps: out, cycles }
}

/**
 * Reads every `<dir>/<id>/manifest.yml` as text; a directory without one is an issue, not
 * skipped.
 */
export const readSources = Effect.fn("Catalog.readSources")(function* (dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const root = path.resolve(dir)
  const entries = (yield* fs.readDirectory(root)).sort()
  const sources: Array<ManifestSource> = []
  const issues: Array<ManifestIssue> = []
  for (const entry of entries) {
    const appDir = path.join(root, entry)
    const info = yield* fs.stat(appDir)
    if (info.type !== "Directory" || entry.startsWith(".")) continue
    const file = path.join(appDir, "manifest.yml")
    const text = yield* fs.readFileString(file).pipe(Effect.option)
    if (text._tag === "None") {
      issues.push({ file, path: "", message: "cannot read manifest.yml (every app directory needs one)" })
      continue
    }
    // Templates are the other plain files next to the manifest; subdirectories (build contexts,
    // static html) are not read.
    const templates = new Map<string, string>()
    for (const name of (yield* fs.readDirectory(appDir)).sort()) {
      if (name === "manifest.yml" || name.startsWith(".")) continue
      const other = path.join(appDir, name)
      if ((yield* fs.stat(other)).type !== "File") continue
      const content = yield* fs.readFileString(other).pipe(Effect.option)
      if (content._tag === "Some") templates.set(name, content.value)
    }
    sources.push({ file, dir: appDir, dirName: entry, text: text.value, templates })
  }
  return { sources: sources as ReadonlyArray<ManifestSource>, issues: issues as ReadonlyArray<ManifestIssue> }
})

/** Reads every `<dir>/<id>/manifest.yml`; a directory without one is reported, not skipped. */
export const loadCatalog = Effect.fn("Catalog.load")(function* (
  dir: string,
  policy: ManifestPolicy = defaultPolicy
) {
  const { sources, issues } = yield* readSources(dir)
  const catalog = catalogFromSources(sources, policy)
  return { apps: catalog.apps, issues: [...issues, ...catalog.issues] } satisfies Catalog
})
