/**
 * `archy doctor`: read-only checks of what the field broke, each finding with how to fix it.
 *
 * - FM4: containers.conf must set `host_containers_internal_ip` to the archipelago network's
 *   gateway (on some podman versions `host.containers.internal` resolved to the LAN gateway);
 *   the `archipelago` network must have its subnet and gateway; every managed container must
 *   resolve `host.archipelago` to that gateway.
 * - FM6: podman's storage must not hold containers its state DB does not list (the DB was lost:
 *   podman then lists nothing while the old containers still run and hold their names).
 * - Secret exposure: no managed container may carry a canonical secret's value in its env, args
 *   or labels (readable by anyone with `podman inspect`). Findings name the container and the
 *   secret, never the value.
 *
 * The checks are pure functions over what was read; `diagnose` does the reading.
 */
import type * as Desired from "@archy/core/Desired"
import { labels as ourLabels } from "@archy/core/Observed"
import { type ContainerDetails, PodmanRuntime } from "@archy/podman/PodmanRuntime"
import { type Orphan, PodmanState } from "@archy/podman/PodmanState"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { SecretStore } from "./SecretStore.ts"

export interface Finding {
  readonly check: "containers.conf" | "network" | "hosts" | "secrets" | "podman" | "podman state"
  readonly ok: boolean
  readonly message: string
  readonly fix?: string
}

/** Where podman reads containers.conf from, in the order it applies them (later wins). */
export const containersConfPaths = [
  "/usr/share/containers/containers.conf",
  "/etc/containers/containers.conf",
  "/etc/containers/containers.conf.d"
]

/** The `host_containers_internal_ip` a set of containers.conf texts ends up with (later wins). */
export const hostContainersInternalIp = (texts: ReadonlyArray<string>): string | undefined => {
  let value: string | undefined
  for (const text of texts) {
    let section = ""
    for (const raw of text.split("\n")) {
      const line = raw.replace(/#.*$/, "").trim()
      const header = /^\[([^\]]+)\]$/.exec(line)
      if (header !== null) {
        section = header[1]!.trim()
        continue
      }
      const m = /^host_containers_internal_ip\s*=\s*"([^"]*)"$/.exec(line)
      if (m !== null && section === "containers") value = m[1]
    }
  }
  return value
}

export const checkContainersConf = (
  files: ReadonlyArray<{ readonly path: string; readonly text: string }>,
  network: Desired.NetworkSpec
): Finding => {
  const ip = hostContainersInternalIp(files.map((f) => f.text))
  return ip === network.gateway
    ? { check: "containers.conf", ok: true, message: `host_containers_internal_ip = "${ip}"` }
    : {
        check: "containers.conf",
        ok: false,
        message:
          ip === undefined
            ? `no containers.conf sets host_containers_internal_ip (read: ${files.map((f) => f.path).join(", ") || "none"}); host.containers.internal may resolve to the LAN gateway`
            : `host_containers_internal_ip is "${ip}", not the archipelago gateway ${network.gateway}`,
        fix: `install image-recipe/containers.conf as /etc/containers/containers.conf.d/50-archipelago.conf (it sets host_containers_internal_ip = "${network.gateway}")`
      }
}

export const checkNetwork = (
  networks: ReadonlyArray<{ readonly name: string; readonly subnet?: string; readonly gateway?: string }>,
  spec: Desired.NetworkSpec
): Finding => {
  const net = networks.find((n) => n.name === spec.name)
  if (net === undefined) {
    return {
      check: "network",
      ok: false,
      message: `network ${spec.name} does not exist`,
      fix: "archy apply (or the daemon's next pass) creates it"
    }
  }
  return net.subnet === spec.subnet && net.gateway === spec.gateway
    ? { check: "network", ok: true, message: `network ${spec.name}: ${spec.subnet}, gateway ${spec.gateway}` }
    : {
        check: "network",
        ok: false,
        message: `network ${spec.name} has subnet ${net.subnet ?? "?"} and gateway ${net.gateway ?? "?"}, want ${spec.subnet} and ${spec.gateway}`,
        fix: `stop the containers on it, podman network rm ${spec.name}, then archy apply recreates it`
      }
}

export const checkHosts = (
  details: ReadonlyArray<ContainerDetails>,
  spec: Desired.NetworkSpec
): ReadonlyArray<Finding> =>
  details.map((d) => {
    const want = `${spec.hostAlias}:${spec.gateway}`
    return d.extraHosts.includes(want)
      ? { check: "hosts" as const, ok: true, message: `${d.name}: ${spec.hostAlias} -> ${spec.gateway}` }
      : {
          check: "hosts" as const,
          ok: false,
          message: `${d.name} does not resolve ${spec.hostAlias} to ${spec.gateway} (extra hosts: ${d.extraHosts.join(", ") || "none"})`,
          fix: `podman rm -f ${d.name}; the next pass recreates it with --add-host=${want}`
        }
  })

export const checkPodmanState = (orphans: ReadonlyArray<Orphan>): Finding =>
  orphans.length === 0
    ? {
        check: "podman state",
        ok: true,
        message: "podman's state DB lists every container its storage holds"
      }
    : {
        check: "podman state",
        ok: false,
        message: `podman's state DB does not list ${orphans.length} container(s) its storage holds (was libpod/bolt_state.db lost?): ${orphans.map((o) => `${o.name} (${o.id.slice(0, 12)}: ${o.detail})`).join("; ")}`,
        fix: "archy apply or the daemon's next pass cleans them (runtime, conmon, network, storage; never images, volumes or app data) and recreates them from the manifests; never podman system reset"
      }

/** Secrets shorter than this are not searched for: they would match by chance. */
const minSecretLength = 8

export const checkSecretExposure = (
  details: ReadonlyArray<ContainerDetails>,
  secrets: ReadonlyMap<string, Redacted.Redacted<string>>
): ReadonlyArray<Finding> => {
  const findings: Array<Finding> = []
  for (const d of details) {
    const places = [
      ["env", d.env],
      ["args", d.args],
      ["labels", Object.entries(d.labels).map(([k, v]) => `${k}=${v}`)]
    ] as const
    for (const [name, value] of secrets) {
      const v = Redacted.value(value)
      if (v.length < minSecretLength) continue
      for (const [where, texts] of places) {
        if (texts.some((t) => t.includes(v))) {
          findings.push({
            check: "secrets",
            ok: false,
            message: `${d.name} carries secret ${name} in its ${where}: anyone who can run podman inspect can read it`,
            fix: `consume ${name} as a mounted file (the manifest's secrets: entry), then recreate ${d.name}`
          })
        }
      }
    }
  }
  if (findings.length === 0) {
    findings.push({
      check: "secrets",
      ok: true,
      message: `no secret value in the env, args or labels of ${details.length} managed container(s)`
    })
  }
  return findings
}

/** Reads containers.conf, podman's state and the secrets, and runs every check. */
export const diagnose = Effect.fn("Doctor.diagnose")(function* (options: {
  readonly network: Desired.NetworkSpec
  readonly containersConf?: ReadonlyArray<string>
}) {
  const fs = yield* FileSystem.FileSystem
  const runtime = yield* PodmanRuntime
  const store = yield* SecretStore
  const files: Array<{ path: string; text: string }> = []
  for (const path of options.containersConf ?? containersConfPaths) {
    const info = yield* fs.stat(path).pipe(Effect.option)
    if (info._tag === "None") continue
    const paths =
      info.value.type === "Directory"
        ? (yield* fs.readDirectory(path).pipe(Effect.orElseSucceed(() => [])))
            .filter((f) => f.endsWith(".conf"))
            .sort()
            .map((f) => `${path}/${f}`)
        : [path]
    for (const p of paths) {
      const text = yield* fs.readFileString(p).pipe(Effect.option)
      if (text._tag === "Some") files.push({ path: p, text: text.value })
    }
  }
  const findings: Array<Finding> = [checkContainersConf(files, options.network)]
  const snapshot = yield* runtime.observe.pipe(Effect.result)
  if (snapshot._tag === "Failure") {
    findings.push({
      check: "podman",
      ok: false,
      message: snapshot.failure.message,
      fix: "start podman's API service or check the --socket path"
    })
    return findings
  }
  findings.push(checkNetwork(snapshot.success.networks, options.network))
  const state = yield* Effect.serviceOption(PodmanState)
  if (Option.isSome(state)) {
    const orphans = yield* state.value.orphans(snapshot.success.containers).pipe(Effect.result)
    findings.push(
      orphans._tag === "Success"
        ? checkPodmanState(orphans.success)
        : {
            check: "podman state",
            ok: false,
            message: `cannot compare podman's state with its storage: ${orphans.failure.message}`
          }
    )
  }
  const managed = snapshot.success.containers.filter((c) => c.labels[ourLabels.app] !== undefined)
  const details: Array<ContainerDetails> = []
  for (const c of managed) {
    const d = yield* runtime.inspect(c.name).pipe(Effect.option)
    if (d._tag === "Some") details.push(d.value)
  }
  findings.push(...checkHosts(details, options.network))
  const secrets = yield* store.read(yield* store.names)
  findings.push(...checkSecretExposure(details, secrets))
  return findings
})
