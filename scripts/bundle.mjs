// Bundles the archy command line (every workspace package and its dependencies) into one
// ES module, .build/archy.mjs, which bin/archy runs. One prebuilt file instead of hundreds of
// TypeScript modules stripped at load time: the daemon idles at ~90 MB RSS instead of ~155 MB
// and starts faster. Run by scripts/toolchain.sh whenever a source file is newer than the bundle.
import { renameSync } from "node:fs"
import { build } from "rolldown"

const root = new URL("..", import.meta.url).pathname
// Built under a name of this process's own, then renamed: two `bin/archy` started together may both
// find the bundle stale, and neither may run (or leave) a half-written one.
const partial = `${root}.build/archy.${process.pid}.partial.mjs`
await build({
  input: `${root}packages/cli/src/bin.ts`,
  platform: "node",
  logLevel: "warn",
  output: { file: partial, format: "esm", codeSplitting: false }
})
renameSync(partial, `${root}.build/archy.mjs`)
