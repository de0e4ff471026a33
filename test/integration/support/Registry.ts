/**
 * A private test registry (test/registry/start) on a free 127.0.0.1 port with its own storage
 * directory, so suites using the default one (127.0.0.1:5000) are unaffected.
 */
import { execFileSync } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { executable, freePort } from "./Prerequisites.ts"

const start = fileURLToPath(new URL("../../registry/start", import.meta.url))
const stop = fileURLToPath(new URL("../../registry/stop", import.meta.url))

/** `undefined` when the registry binary is installed, else why not. */
export const registryBinaryMissing = (): string | undefined =>
  executable("/usr/bin/docker-registry", "run scripts/install-test-deps.sh as root")

export interface Registry {
  /** `127.0.0.1:PORT`. */
  readonly address: string
  /** Stops it and deletes its storage. */
  readonly stop: () => void
}

/** Starts a registry whose state lives in `<parentDir>/registry`. */
export const startRegistry = async (parentDir: string): Promise<Registry> => {
  const env = {
    ...process.env,
    ARCHY_TEST_REGISTRY_ADDR: `127.0.0.1:${await freePort()}`,
    ARCHY_TEST_REGISTRY_DIR: join(parentDir, "registry")
  }
  const address = execFileSync(start, { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim()
  return {
    address,
    stop: () => {
      execFileSync(stop, { env, stdio: "ignore" })
    }
  }
}
