/**
 * Who owns a container's files on the host. Rootful podman runs a container's uid N as host uid
 * N; rootless podman runs container uid 0 as the service user and uid N >= 1 as
 * `subuid_start + N - 1` from the service user's `/etc/subuid` range (gids likewise through
 * `/etc/subgid`). A data dir must be owned by the host uid the container's process really has,
 * or the container cannot write its data.
 *
 * Pure: the engine reads `/etc/subuid`, `/etc/subgid` and the podman socket's owner and hands
 * the result in as an `IdMapping`.
 */

/** A subordinate id range: `count` ids from `start`. */
export interface IdRange {
  readonly start: number
  readonly count: number
}

/** A user as `/etc/subuid` may name it: by name or by uid. */
export interface ServiceUser {
  readonly name: string
  readonly uid: number
  readonly gid: number
}

export type IdMapping =
  | { readonly _tag: "Rootful" }
  | {
      readonly _tag: "Rootless"
      readonly user: ServiceUser
      /** Absent when the user has no line in `/etc/subuid` (or `/etc/subgid`). */
      readonly subuid?: IdRange
      readonly subgid?: IdRange
    }

export const rootful: IdMapping = { _tag: "Rootful" }

/** A container-side owner, or the host-side one it maps to. */
export interface Owner {
  readonly uid: number
  readonly gid: number
}

export const ownerText = (o: Owner): string => `${o.uid}:${o.gid}`

/**
 * The ranges of `/etc/subuid` or `/etc/subgid` text (`name-or-uid:start:count` per line) that
 * belong to `user`; the first one, as podman uses it. Malformed lines are not ours to judge.
 */
export const subIdRange = (text: string, user: { readonly name: string; readonly uid: number }) => {
  for (const line of text.split("\n")) {
    const fields = line.trim().split(":")
    if (fields.length !== 3) continue
    const [who, start, count] = fields as [string, string, string]
    if (who !== user.name && who !== String(user.uid)) continue
    if (!/^[0-9]+$/.test(start) || !/^[0-9]+$/.test(count)) continue
    return { start: Number(start), count: Number(count) } satisfies IdRange
  }
  return undefined
}

type Mapped = { readonly id: number } | { readonly error: string }

const mapOne = (mapping: IdMapping, kind: "uid" | "gid", id: number): Mapped => {
  if (mapping._tag === "Rootful") return { id }
  if (id === 0) return { id: kind === "uid" ? mapping.user.uid : mapping.user.gid }
  const range = kind === "uid" ? mapping.subuid : mapping.subgid
  const file = kind === "uid" ? "/etc/subuid" : "/etc/subgid"
  if (range === undefined) {
    return {
      error: `container ${kind} ${id} cannot be mapped: user ${mapping.user.name} has no range in ${file}`
    }
  }
  if (id > range.count - 1) {
    return {
      error: `container ${kind} ${id} is beyond user ${mapping.user.name}'s ${file} range ${range.start}-${range.start + range.count - 1} (${range.count} ids, container ${kind}s 1-${range.count - 1})`
    }
  }
  return { id: range.start + id - 1 }
}

/** The host owner of files a container running as `owner` creates, or why there is none. */
export const toHost = (
  mapping: IdMapping,
  owner: Owner
): { readonly owner: Owner } | { readonly error: string } => {
  const uid = mapOne(mapping, "uid", owner.uid)
  if ("error" in uid) return uid
  const gid = mapOne(mapping, "gid", owner.gid)
  if ("error" in gid) return gid
  return { owner: { uid: uid.id, gid: gid.id } }
}

/**
 * The numeric owner a manifest's `user` (`1000` or `1000:1000`) runs as; `root` when absent
 * (the image's own USER cannot be known before it runs, so data dirs need a numeric user).
 * `undefined` for a user name, which only the image's `/etc/passwd` can resolve.
 */
export const parseUser = (user: string | undefined): Owner | undefined => {
  if (user === undefined) return { uid: 0, gid: 0 }
  const m = /^([0-9]+)(?::([0-9]+))?$/.exec(user)
  if (m === null) return undefined
  const uid = Number(m[1])
  return { uid, gid: m[2] !== undefined ? Number(m[2]) : uid }
}
