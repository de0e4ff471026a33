/**
 * Fault sites in the style of FoundationDB's BUGGIFY: each site is switched on or off once per
 * run (half of them, by the seed), and a switched-on site then fires on a share of the calls
 * that reach it, drawn from the same seeded PRNG. A run thus exercises a few failure modes hard
 * instead of every one faintly. `enabled` turns them all off for the liveness phase.
 *
 * It owns the decisions and their counts; the fakes (`FakePodman`, `MemoryFileSystem`) own what
 * a fired fault does.
 */
import type { Prng } from "./Prng.ts"

/** Every place a fault can be injected, with its chance per call once switched on. */
export const sites = {
  /** A podman call fails before it takes effect, with any `RuntimeError` reason. */
  "podman.error": 0.08,
  /** A podman call takes effect but its answer is lost (an error comes back anyway). */
  "podman.lostReply": 0.05,
  /** A podman call hangs until the adapter's timeout ends it (before or after its effect). */
  "podman.hang": 0.03,
  /** A health check run fails to run (a RuntimeError) or reports unhealthy. */
  "podman.unhealthy": 0.15,
  /** podman's event for a change never reaches the daemon. */
  "events.lost": 0.3,
  /** A running container's process exits on its own (a crash, an OOM kill). */
  "world.containerDies": 0.04,
  /** A stray container without our labels appears, holding a name a manifest claims. */
  "world.strayClaimedName": 0.01,
  /** A stray container without our labels appears under a name of its own: never ours to touch. */
  "world.strayForeign": 0.02,
  /** podman's state DB forgets a container that still runs and holds its name (FM6). */
  "world.stateDbLoss": 0.01,
  /** A file system call fails (EIO, ENOSPC, EACCES). */
  "fs.error": 0.04,
  /** The daemon process dies at a file system call (a write is torn at that point). */
  "fs.crash": 0.01,
  /** The daemon process dies at a podman call (before or after podman acted). */
  "podman.crash": 0.005
} as const

export type Site = keyof typeof sites

export const allSites = Object.keys(sites) as ReadonlyArray<Site>

/** Sites off unless asked for (none today: each failure mode here is one the engine heals). */
export const defaultExcluded: ReadonlyArray<Site> = []

export interface Faults {
  /** Whether the fault fires at this call (always false when disabled or switched off). */
  readonly fire: (site: Site) => boolean
  /** Sites switched on for this run. */
  readonly active: ReadonlyArray<Site>
  /** How often each site fired. */
  readonly fired: ReadonlyMap<Site, number>
  enabled: boolean
}

export const make = (prng: Prng, options: { readonly exclude?: ReadonlyArray<Site> } = {}): Faults => {
  const excluded = new Set(options.exclude ?? defaultExcluded)
  // Always draw for every site, so excluding one does not shift the rest of the run.
  const active = allSites.filter((s) => prng.chance(0.5) && !excluded.has(s))
  const on = new Set(active)
  const fired = new Map<Site, number>()
  const faults: Faults = {
    active,
    fired,
    enabled: true,
    fire: (site) => {
      if (!faults.enabled || !on.has(site)) return false
      if (!prng.chance(sites[site])) return false
      fired.set(site, (fired.get(site) ?? 0) + 1)
      return true
    }
  }
  return faults
}
