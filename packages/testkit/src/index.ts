/**
 * The test kit: a fake podman behind the real port, an in-memory file system, seeded faults and
 * the deterministic simulation that drives the real daemon with them.
 */
export * as FakePodman from "./FakePodman.ts"
export * as Faults from "./Faults.ts"
export * as HostDirectories from "./HostDirectories.ts"
export * as Invariants from "./Invariants.ts"
export * as ManifestFiles from "./ManifestFiles.ts"
export * as MemoryFileSystem from "./MemoryFileSystem.ts"
export * as Prng from "./Prng.ts"
export * as Simulation from "./Simulation.ts"
