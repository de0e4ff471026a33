/**
 * How a DesiredContainer becomes a podman container: the same spec as `podman create` arguments
 * (CLI adapter) and as a libpod SpecGenerator body (REST adapter), so both adapters create
 * identical containers. Pure.
 *
 * Secrets are bind-mounted read-only files: never env, never args, so `podman inspect` shows a
 * path, not a value. Images are never pulled implicitly (`--pull=never`): pulls are plan actions.
 * Podman's own restart policy is off; the reconciler restarts with backoff.
 */
import type { DesiredContainer } from "@archy/core/Desired"
import { durationMs } from "@archy/core/Manifest"
import { labels } from "@archy/core/Observed"

const defaultHealthTimeoutMs = 30_000
const defaultHealthRetries = 3

/** Our labels: app, container, spec hash (compared every pass) and files hash (informative). */
export const createLabels = (c: DesiredContainer): Readonly<Record<string, string>> => ({
  ...c.spec.labels,
  [labels.specHash]: c.specHash,
  [labels.filesHash]: c.filesHash,
  [labels.stopTimeout]: String(c.spec.stopTimeoutSeconds)
})

const sortedLabels = (c: DesiredContainer) =>
  Object.entries(createLabels(c)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

/** Bind mounts: the app's data and rendered files, then its secrets (always read-only). */
const binds = (c: DesiredContainer) => [
  ...c.spec.mounts.map((m) => ({ source: m.source, target: m.target, readOnly: m.readOnly })),
  ...c.spec.secretMounts.map((s) => ({ source: s.source, target: s.target, readOnly: true }))
]

/** Arguments after `podman`, for `podman create …`. */
export const cliCreateArgs = (c: DesiredContainer): ReadonlyArray<string> => {
  const s = c.spec
  const args: Array<string> = ["create", "--name", s.name, "--pull=never", "--restart=no"]
  args.push(`--stop-timeout=${s.stopTimeoutSeconds}`)
  for (const [k, v] of sortedLabels(c)) args.push("--label", `${k}=${v}`)
  if (s.hostNetwork) args.push("--network=host")
  else for (const n of s.networks) args.push(`--network=${n}`)
  if (s.hostPid) args.push("--pid=host")
  for (const [host, ip] of s.hosts) args.push(`--add-host=${host}:${ip}`)
  for (const p of s.ports) args.push("-p", `${p.hostIp}:${p.host}:${p.container}/${p.protocol}`)
  for (const b of binds(c)) args.push("-v", `${b.source}:${b.target}${b.readOnly ? ":ro" : ""}`)
  for (const [k, v] of s.env) args.push("-e", `${k}=${v}`)
  for (const cap of s.capAdd) args.push(`--cap-add=${cap}`)
  if (s.user !== undefined) args.push(`--user=${s.user}`)
  if (s.workdir !== undefined) args.push(`--workdir=${s.workdir}`)
  if (s.entrypoint !== undefined) args.push(`--entrypoint=${JSON.stringify(s.entrypoint)}`)
  if (s.health !== undefined) {
    // Recorded so `podman healthcheck run` works; the daemon schedules the checks itself.
    // podman 4.3 splits --health-cmd on whitespace unless it is a JSON array (to which it adds
    // CMD itself), so: plain words when they have no spaces, else the JSON array.
    const cmd = s.health.command
    const plain = cmd.every((a) => a.length > 0 && !/\s/.test(a))
    args.push(
      `--health-cmd=${plain ? ["CMD", ...cmd].join(" ") : JSON.stringify(cmd)}`,
      "--health-interval=disable",
      `--health-timeout=${durationMs(s.health.timeout, defaultHealthTimeoutMs) / 1000}s`,
      `--health-retries=${s.health.retries ?? defaultHealthRetries}`
    )
    if (s.health.startPeriod !== undefined) {
      args.push(`--health-start-period=${durationMs(s.health.startPeriod, 0) / 1000}s`)
    }
  }
  args.push(s.image, ...(s.command ?? []))
  return args
}

/** The body of `POST /libpod/containers/create`. */
export const libpodCreateBody = (c: DesiredContainer): Record<string, unknown> => {
  const s = c.spec
  return {
    name: s.name,
    image: s.image,
    labels: Object.fromEntries(sortedLabels(c)),
    stop_timeout: s.stopTimeoutSeconds,
    restart_policy: "no",
    ...(s.command !== undefined ? { command: s.command } : {}),
    ...(s.entrypoint !== undefined ? { entrypoint: s.entrypoint } : {}),
    ...(s.user !== undefined ? { user: s.user } : {}),
    ...(s.workdir !== undefined ? { work_dir: s.workdir } : {}),
    env: Object.fromEntries(s.env),
    netns: { nsmode: s.hostNetwork ? "host" : "bridge" },
    ...(s.hostNetwork ? {} : { Networks: Object.fromEntries(s.networks.map((n) => [n, {}])) }),
    ...(s.hostPid ? { pidns: { nsmode: "host" } } : {}),
    hostadd: s.hosts.map(([host, ip]) => `${host}:${ip}`),
    portmappings: s.ports.map((p) => ({
      host_ip: p.hostIp,
      host_port: p.host,
      container_port: p.container,
      protocol: p.protocol
    })),
    mounts: binds(c).map((b) => ({
      type: "bind",
      source: b.source,
      destination: b.target,
      options: b.readOnly ? ["rbind", "ro"] : ["rbind"]
    })),
    cap_add: s.capAdd,
    ...(s.health !== undefined
      ? {
          // Durations in nanoseconds; a missing Timeout is stored as 0 s and every check fails.
          healthconfig: {
            Test: ["CMD", ...s.health.command],
            Interval: 0,
            Timeout: durationMs(s.health.timeout, defaultHealthTimeoutMs) * 1_000_000,
            Retries: s.health.retries ?? defaultHealthRetries,
            ...(s.health.startPeriod !== undefined
              ? { StartPeriod: durationMs(s.health.startPeriod, 0) * 1_000_000 }
              : {})
          }
        }
      : {})
  }
}
