import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
    // Real-podman suites share one podman; run files one at a time there.
    fileParallelism: true,
    testTimeout: 30_000
  }
})
