/**
 * The engine: interpreters of the plan. A reconcile pass (observe, plan, execute), the secret
 * store, adoption records, crash-safe file writes and app upgrades with their health gate.
 */
export * as AdoptionStore from "./AdoptionStore.ts"
export * as AtomicFile from "./AtomicFile.ts"
export * as Reconciler from "./Reconciler.ts"
export * as SecretStore from "./SecretStore.ts"
export * as Upgrade from "./Upgrade.ts"
export * as UpgradeStore from "./UpgradeStore.ts"
