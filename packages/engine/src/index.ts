/**
 * The engine: interpreters of the plan. A reconcile pass (observe, plan, execute), the secret
 * store, adoption records and crash-safe file writes.
 */
export * as AdoptionStore from "./AdoptionStore.ts"
export * as AtomicFile from "./AtomicFile.ts"
export * as Reconciler from "./Reconciler.ts"
export * as SecretStore from "./SecretStore.ts"
