/**
 * Which ids podman's containers get on this host: rootful when podman runs as root, otherwise
 * rootless as the user it runs as, through that user's `/etc/subuid` and `/etc/subgid` ranges.
 * Read once when a command or the daemon starts (the ranges change only when an administrator
 * edits them). The mapping itself is core's `Ownership`.
 */
import { readFileSync, statSync } from "node:fs"
import { type IdMapping, rootful, subIdRange } from "@archy/core/Ownership"

export interface HostIdFiles {
  readonly passwd?: string
  readonly subuid?: string
  readonly subgid?: string
}

const readText = (file: string): string => {
  try {
    return readFileSync(file, "utf8")
  } catch {
    return "" // no such file: the user has no range, which mapping reports by name
  }
}

/**
 * The uid podman runs as: the owner of its API socket, or this process's own uid when it runs
 * the podman command (or the socket cannot be read).
 */
export const podmanUidOf = (socket: string | undefined): number => {
  const own = process.getuid?.() ?? 0
  if (socket === undefined) return own
  try {
    return statSync(socket).uid
  } catch {
    return own
  }
}

/** The id mapping of a podman running as `podmanUid`; files default to the system's. */
export const readIdMapping = (podmanUid: number, files: HostIdFiles = {}): IdMapping => {
  if (podmanUid === 0) return rootful
  const entry = readText(files.passwd ?? "/etc/passwd")
    .split("\n")
    .map((l) => l.split(":"))
    .find((f) => f.length >= 4 && f[2] === String(podmanUid))
  const user = {
    name: entry?.[0] ?? String(podmanUid),
    uid: podmanUid,
    gid: entry !== undefined ? Number(entry[3]) : podmanUid
  }
  const subuid = subIdRange(readText(files.subuid ?? "/etc/subuid"), user)
  const subgid = subIdRange(readText(files.subgid ?? "/etc/subgid"), user)
  return {
    _tag: "Rootless",
    user,
    ...(subuid !== undefined ? { subuid } : {}),
    ...(subgid !== undefined ? { subgid } : {})
  }
}
