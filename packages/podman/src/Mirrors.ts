/**
 * Registry mirrors: where to try pulling an image before its upstream registry. The node's
 * config lists mirrors in order; a pull tries each (skipping to the next when one is down or
 * lacks the image), then the upstream reference itself. Pure: the adapters do the pulling.
 */

export interface RegistryMirror {
  /** `host[:port]` of the mirror registry. */
  readonly host: string
  /** Plain HTTP or a self-signed certificate (a mirror on the LAN or on 127.0.0.1). */
  readonly insecure: boolean
}

/** One place to pull from, in the order they are tried. */
export interface PullCandidate {
  readonly ref: string
  /** Absent for upstream: podman's registries.conf decides (it may mark a registry insecure). */
  readonly tlsVerify?: boolean
  /** Where it came from, for progress and errors: a mirror's host or "upstream". */
  readonly via: string
}

/** Splits `registry/path:tag[@digest]` into the registry and the rest. */
export const splitRegistry = (ref: string): { readonly registry: string; readonly path: string } => {
  const slash = ref.indexOf("/")
  return { registry: ref.slice(0, slash), path: ref.slice(slash + 1) }
}

/** The mirrors' copies of `ref`, in order, then `ref` upstream. */
export const pullCandidates = (
  ref: string,
  mirrors: ReadonlyArray<RegistryMirror>
): ReadonlyArray<PullCandidate> => {
  const { path } = splitRegistry(ref)
  return [
    ...mirrors.map((m) => ({ ref: `${m.host}/${path}`, tlsVerify: !m.insecure, via: m.host })),
    { ref, via: "upstream" }
  ]
}

/**
 * Parses `ARCHY_REGISTRY_MIRRORS`-style text: comma-separated `host[:port]`, each optionally
 * prefixed `http://` (insecure) or `https://`.
 */
export const parseMirrors = (text: string): ReadonlyArray<RegistryMirror> =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) =>
      s.startsWith("http://")
        ? { host: s.slice("http://".length).replace(/\/+$/, ""), insecure: true }
        : { host: s.replace(/^https:\/\//, "").replace(/\/+$/, ""), insecure: false }
    )
