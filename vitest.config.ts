import { configDefaults, defineConfig } from "vitest/config"

const roots = ["packages/*/test", "test"]
const integration = "**/*.integration.test.ts"

// `vitest run` runs both projects; `vitest run --project unit` (or `integration`) runs one.
export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: roots.map((root) => `${root}/**/*.test.ts`),
          exclude: [...configDefaults.exclude, integration],
          fileParallelism: true,
          testTimeout: 30_000
        }
      },
      {
        extends: true,
        test: {
          // Real-podman suites: they share one podman (its containers, images, the archipelago
          // network and 127.0.0.1 ports), so their files run one at a time.
          name: "integration",
          include: roots.map((root) => `${root}/**/${integration}`),
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000
        }
      }
    ]
  }
})
