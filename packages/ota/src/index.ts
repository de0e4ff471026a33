/**
 * Over-the-air updates of the node: the install layout and its records, fetching and verifying
 * releases from mirrors, applying one, verifying it at boot, and rolling back.
 */
export * as Decide from "./Decide.ts"
export * as Install from "./Install.ts"
export * as Mirrors from "./Mirrors.ts"
export * as Probe from "./Probe.ts"
export * as ServiceManager from "./ServiceManager.ts"
export * as Updater from "./Updater.ts"
export * as Verifier from "./Verifier.ts"
