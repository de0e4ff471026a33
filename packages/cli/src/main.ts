/** The CLI's commands, for embedding (tests, the daemon). */
export { apply } from "./commands/Apply.ts"
export { plan } from "./commands/Plan.ts"
export { status } from "./commands/Status.ts"
export { validate } from "./commands/Validate.ts"
