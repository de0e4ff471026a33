/**
 * `archy status [--json]`: each installed app's containers as podman sees them now (state, exit
 * code, since when, whether the spec is current), plus containers the manifests want that do
 * not exist. `--json` prints `{"apps":[{"id","containers":[{"name","state",…}]}]}`.
 */
import { Desired, Observed, Upgrade } from "@archy/core"
import { AdoptionStore } from "@archy/engine/AdoptionStore"
import { UpgradeStore } from "@archy/engine/UpgradeStore"
import { PodmanRuntime } from "@archy/podman/PodmanRuntime"
import * as Console from "effect/Console"
import { Command, Flag } from "effect/cli"
import * as Effect from "effect/Effect"
import { loadCatalogOrReport, resolveAppsDir } from "../CatalogInput.ts"
import { call } from "../DaemonClient.ts"
import { daemonOf, nodeConfigOf, nodeFlags, nodeLayer } from "../NodeOptions.ts"
import { Reported } from "../Reported.ts"
import { selectionOf } from "../Selection.ts"

export interface ContainerStatus {
  readonly name: string
  readonly state: Observed.ContainerState | "missing"
  readonly health?: string
  /** Why it is unhealthy, backing off or waiting (from the daemon). */
  readonly reason?: string
  readonly image?: string
  readonly exitCode?: number
  readonly startedAt?: string
  /** False when the container's spec-hash label differs from its manifest's. */
  readonly current?: boolean
}

/** The app's latest upgrade (`upgrades.json`). */
export interface UpgradeStatus {
  readonly state: string
  readonly reason: string
  readonly changes: ReadonlyArray<{ readonly container: string; readonly from: string; readonly to: string }>
}

export interface AppStatus {
  readonly id: string
  readonly containers: ReadonlyArray<ContainerStatus>
  readonly upgrade?: UpgradeStatus
}

/** Joins what should exist with what podman shows; pure, for tests. */
export const statusOf = (desired: Desired.Desired, observed: ReadonlyArray<Observed.ObservedContainer>) => {
  const byApp = new Map<string, Array<ContainerStatus>>()
  const add = (app: string, s: ContainerStatus) => byApp.set(app, [...(byApp.get(app) ?? []), s])
  const wanted = new Map(desired.apps.flatMap((a) => a.containers.map((c) => [c.name, c] as const)))
  const seen = new Set<string>()
  for (const c of observed) {
    const app = c.labels[Observed.labels.app]
    const name = c.labels[Observed.labels.container]
    if (app === undefined || name === undefined) continue
    seen.add(name)
    const want = wanted.get(name)
    add(app, {
      name: c.name,
      state: c.state,
      image: c.image,
      ...(c.exitCode !== undefined && c.state !== "running" ? { exitCode: c.exitCode } : {}),
      ...(c.startedAtMs !== undefined ? { startedAt: new Date(c.startedAtMs).toISOString() } : {}),
      ...(want !== undefined ? { current: c.labels[Observed.labels.specHash] === want.specHash } : {})
    })
  }
  for (const app of desired.apps) {
    for (const c of app.containers) if (!seen.has(c.name)) add(app.id, { name: c.name, state: "missing" })
  }
  return [...byApp]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([id, containers]): AppStatus => ({ id, containers }))
}

const describe = (c: ContainerStatus): string =>
  [
    c.health !== undefined && c.state === "running" ? c.health : "",
    c.reason ?? "",
    c.state === "exited" && c.exitCode !== undefined ? `exit code ${c.exitCode}` : "",
    c.state === "running" && c.startedAt !== undefined ? `since ${c.startedAt}` : "",
    c.current === false ? "spec changed: recreated on the next pass" : ""
  ]
    .filter((s) => s !== "")
    .join(", ")

export const status = Command.make(
  "status",
  {
    ...nodeFlags,
    json: Flag.Boolean("json").pipe(Flag.withDescription("Print JSON"), Flag.withDefault(false))
  },
  Effect.fn(function* (options) {
    const running = yield* daemonOf(options)
    if (running !== undefined) {
      // The daemon knows more than podman: health verdicts and crash backoff, with reasons.
      const result = (yield* call("package.status", undefined, running).pipe(
        Effect.catch((e) => Effect.andThen(Console.error(`archy: ${e.message}`), Effect.fail(new Reported())))
      )) as ReadonlyArray<AppStatus>
      const apps = result.map((a) => ({
        id: a.id,
        containers: a.containers,
        ...(a.upgrade !== undefined ? { upgrade: a.upgrade } : {})
      }))
      yield* print(apps, options.json)
      return
    }
    const catalog = yield* loadCatalogOrReport(yield* resolveAppsDir(options.apps))
    const { containers, upgrades } = yield* Effect.gen(function* () {
      const runtime = yield* PodmanRuntime
      const adoption = yield* AdoptionStore
      const upgrades = yield* (yield* UpgradeStore).all
      return { containers: yield* adoption.overlay((yield* runtime.observe).containers), upgrades }
    }).pipe(Effect.provide(nodeLayer(options)))
    // Upgraded apps run their recorded images: current, not "spec changed".
    const desired = Desired.make({
      catalog,
      node: nodeConfigOf(options),
      selection: selectionOf(catalog),
      secrets: new Map(),
      imageOverrides: Upgrade.overridesOf(upgrades)
    })
    const apps = statusOf(desired, containers).map((a) => {
      const u = upgrades[a.id]
      return u === undefined ? a : { ...a, upgrade: { state: u.state, reason: u.reason, changes: u.changes } }
    })
    yield* print(apps, options.json)
  })
).pipe(
  Command.withDescription("Show each app's containers and their state (through the daemon when it runs)")
)

const print = (apps: ReadonlyArray<AppStatus>, json: boolean) =>
  Effect.gen(function* () {
    if (json) {
      yield* Console.log(JSON.stringify({ apps }, null, 2))
      return
    }
    const rows = apps.flatMap((a) => [
      ...a.containers.map((c) => [a.id, c.name, c.state, describe(c)] as const),
      // A committed upgrade is the normal state; one under way or gone back is worth a line.
      ...(a.upgrade !== undefined && a.upgrade.state !== "committed"
        ? [[a.id, "(upgrade)", a.upgrade.state, a.upgrade.reason] as const]
        : [])
    ])
    const w = [0, 1, 2].map((k) =>
      Math.max(["APP", "CONTAINER", "STATE"][k]!.length, ...rows.map((r) => r[k]!.length))
    )
    const line = (r: ReadonlyArray<string>) =>
      `${r[0]!.padEnd(w[0]!)}  ${r[1]!.padEnd(w[1]!)}  ${r[2]!.padEnd(w[2]!)}  ${r[3]}`.trimEnd()
    yield* Console.log(line(["APP", "CONTAINER", "STATE", ""]))
    for (const r of rows) yield* Console.log(line(r))
  })
