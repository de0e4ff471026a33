import { readFileSync } from "node:fs"
import type { ManifestSource } from "@archy/core/Catalog"
import { assert, describe, it } from "@effect/vitest"
import { withLastGood } from "../src/ManifestMemory.ts"

const fixtures = new URL("../../../test/fixtures/apps/", import.meta.url).pathname
const source = (dirName: string, text?: string): ManifestSource => ({
  file: `${fixtures}${dirName}/manifest.yml`,
  dir: `${fixtures}${dirName}`,
  dirName,
  text: text ?? readFileSync(`${fixtures}${dirName}/manifest.yml`, "utf8")
})
const ids = (apps: ReadonlyArray<{ readonly manifest: { readonly id: string } }>) =>
  apps.map((a) => a.manifest.id).sort()

describe("ManifestMemory.withLastGood", () => {
  const good = ["fx-bitcoind", "fx-lnd", "fx-ui", "fx-worker"].map((d) => source(d))
  const remembered = Object.fromEntries(good.map((s) => [s.dirName, s]))

  it("loads a healthy catalog as is and remembers every app", () => {
    const r = withLastGood(good, [], {})
    assert.deepStrictEqual(ids(r.catalog.apps), ["fx-bitcoind", "fx-lnd", "fx-ui", "fx-worker"])
    assert.deepStrictEqual(r.catalog.issues, [])
    assert.deepStrictEqual(r.kept, [])
    assert.strictEqual(r.good.length, 4)
  })

  it("keeps a broken app's last good manifest, and its dependants, and reports the rejection", () => {
    const broken = good.map((s) =>
      s.dirName === "fx-bitcoind" ? { ...s, text: "id: fx-bitcoind\n: : [" } : s
    )
    const r = withLastGood(broken, [], remembered)
    assert.deepStrictEqual(ids(r.catalog.apps), ["fx-bitcoind", "fx-lnd", "fx-ui", "fx-worker"])
    assert.deepStrictEqual(r.kept, [{ app: "fx-bitcoind", file: source("fx-bitcoind").file }])
    assert.isTrue(r.catalog.issues.every((i) => i.file === source("fx-bitcoind").file))
    assert.isTrue(r.catalog.issues.some((i) => /keeps running as its last good manifest/.test(i.message)))
    assert.isTrue(r.catalog.issues.length >= 2, "the parse error itself is reported too")
    // The broken text is never remembered as good.
    assert.deepStrictEqual(
      r.good.map((s) => s.dirName),
      ["fx-lnd", "fx-ui", "fx-worker"]
    )
  })

  it("without a memory a broken app is dropped, as before", () => {
    const broken = good.map((s) => (s.dirName === "fx-worker" ? { ...s, text: "nonsense: true\n" } : s))
    const r = withLastGood(broken, [], {})
    assert.deepStrictEqual(ids(r.catalog.apps), ["fx-bitcoind", "fx-lnd", "fx-ui"])
    assert.deepStrictEqual(r.kept, [])
  })

  it("an app whose directory is gone is not kept", () => {
    const r = withLastGood(
      good.filter((s) => s.dirName !== "fx-worker"),
      [],
      remembered
    )
    assert.deepStrictEqual(ids(r.catalog.apps), ["fx-bitcoind", "fx-lnd", "fx-ui"])
  })
})
