/**
 * The flags every command that touches the node shares (catalog, podman socket, state dir,
 * registry mirrors), their environment fallbacks, and the Layer they build: the podman runtime
 * (libpod REST on a socket when one is found, the podman CLI otherwise), the secret store and
 * the adoption records under the state dir.
 */
import { existsSync } from "node:fs"
import { Desired } from "@archy/core"
import { AdoptionStore } from "@archy/engine/AdoptionStore"
import { HealthBook } from "@archy/engine/Health"
import { podmanUidOf, readIdMapping } from "@archy/engine/HostIds"
import { SecretStore } from "@archy/engine/SecretStore"
import { UpgradeStore } from "@archy/engine/UpgradeStore"
import * as CliRuntime from "@archy/podman/CliRuntime"
import * as LibpodRuntime from "@archy/podman/LibpodRuntime"
import { parseMirrors } from "@archy/podman/Mirrors"
import * as PodmanState from "@archy/podman/PodmanState"
import { discoverSocket } from "@archy/podman/Socket"
import { Flag } from "effect/cli"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { findDaemon } from "./DaemonClient.ts"

export const nodeFlags = {
  apps: Flag.String("apps").pipe(
    Flag.withDescription("Catalog directory (env ARCHY_APPS_DIR; default: the apps/ of this install)"),
    Flag.optional
  ),
  socket: Flag.String("socket").pipe(
    Flag.withDescription(
      "podman API socket (env ARCHY_PODMAN_SOCKET; default: the rootful or the user's socket if present, else the podman CLI)"
    ),
    Flag.optional
  ),
  stateDir: Flag.String("state-dir").pipe(
    Flag.withDescription(
      "Where app data, secrets and records live (env ARCHY_STATE_DIR; default /var/lib/archipelago)"
    ),
    Flag.optional
  ),
  port: Flag.Int("port").pipe(
    Flag.withDescription("The daemon's API port on 127.0.0.1 (env ARCHY_API_PORT; default 7780)"),
    Flag.optional
  ),
  direct: Flag.Boolean("direct").pipe(
    Flag.withDescription("Act on podman directly even when a daemon is running"),
    Flag.withDefault(false)
  ),
  mirrors: Flag.String("mirrors").pipe(
    Flag.withDescription(
      "Registry mirrors tried before upstream, comma-separated host[:port], http:// for plain HTTP (env ARCHY_REGISTRY_MIRRORS)"
    ),
    Flag.optional
  )
}

export interface NodeOptions {
  readonly apps: Option.Option<string>
  readonly port: Option.Option<number>
  readonly direct: boolean
  readonly socket: Option.Option<string>
  readonly stateDir: Option.Option<string>
  readonly mirrors: Option.Option<string>
}

const orEnv = (flag: Option.Option<string>, env: string): string | undefined =>
  Option.getOrUndefined(flag) ??
  (process.env[env] !== undefined && process.env[env] !== "" ? process.env[env] : undefined)

export const stateDirOf = (o: NodeOptions): string =>
  orEnv(o.stateDir, "ARCHY_STATE_DIR") ?? "/var/lib/archipelago"

/**
 * The node's settings under its state dir, with the ids podman's containers get: a rootless
 * podman's (its socket's owner) map through that user's /etc/subuid and /etc/subgid ranges.
 */
export const nodeConfigOf = (o: NodeOptions): Desired.NodeConfig => {
  const stateDir = stateDirOf(o)
  const endpoint = endpointOf(o)
  return {
    ...Desired.defaultNodeConfig,
    dataRoot: `${stateDir}/apps`,
    secretsDir: `${stateDir}/secrets`,
    ids: readIdMapping(podmanUidOf("socket" in endpoint ? endpoint.socket : undefined))
  }
}

/** Which podman endpoint the runtime talks to: a socket path, or the CLI. */
export const endpointOf = (o: NodeOptions): { readonly socket: string } | { readonly cli: true } => {
  const explicit = orEnv(o.socket, "ARCHY_PODMAN_SOCKET")
  const socket = discoverSocket({
    ...(explicit !== undefined ? { explicit } : {}),
    uid: process.getuid?.() ?? 0,
    exists: existsSync
  })
  return socket !== undefined ? { socket } : { cli: true }
}

export const defaultApiPort = 7780

export const apiPortOf = (o: NodeOptions): number => {
  const env = Number(process.env.ARCHY_API_PORT)
  return Option.getOrUndefined(o.port) ?? (Number.isInteger(env) && env > 0 ? env : defaultApiPort)
}

/** The running daemon of this state dir, unless `--direct`: then commands go through it. */
export const daemonOf = (o: NodeOptions) =>
  o.direct ? Effect.succeed(undefined) : findDaemon(stateDirOf(o), apiPortOf(o))

/**
 * PodmanRuntime, PodmanState (FM6 detection and repair), SecretStore, AdoptionStore, the
 * upgrade records and a HealthBook for this node.
 */
export const nodeLayer = (o: NodeOptions) => {
  const mirrors = parseMirrors(orEnv(o.mirrors, "ARCHY_REGISTRY_MIRRORS") ?? "")
  const endpoint = endpointOf(o)
  const runtime =
    "socket" in endpoint
      ? LibpodRuntime.layer({ socketPath: endpoint.socket, mirrors })
      : CliRuntime.layer({ mirrors })
  const stateDir = stateDirOf(o)
  return Layer.mergeAll(
    runtime,
    PodmanState.layer("socket" in endpoint ? { socketPath: endpoint.socket } : {}),
    SecretStore.layer(`${stateDir}/secrets`),
    AdoptionStore.layer(`${stateDir}/adopted.json`),
    UpgradeStore.layer(`${stateDir}/upgrades.json`),
    HealthBook.layer
  )
}
