/** The CLI's commands, for embedding (tests, the daemon). */
export { plan } from "./commands/Plan.ts"
export { validate } from "./commands/Validate.ts"
