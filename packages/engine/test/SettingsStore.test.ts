import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { SettingsStore } from "../src/SettingsStore.ts"

const withStore = <A, E>(body: (file: string, store: SettingsStore["Service"]) => Effect.Effect<A, E>) => {
  const dir = mkdtempSync(join(tmpdir(), "archy-settings-"))
  const file = join(dir, "settings.json")
  return Effect.gen(function* () {
    return yield* body(file, yield* SettingsStore)
  }).pipe(
    Effect.provide(SettingsStore.layer(file)),
    Effect.provide(NodeServices.layer),
    Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  )
}

describe("SettingsStore", () => {
  it.effect("no file means no choices; an update is written sorted, 0600, without empty apps", () =>
    withStore((file, store) =>
      Effect.gen(function* () {
        assert.deepStrictEqual(yield* store.get, {})
        yield* store.update(() => Effect.succeed({ lnd: { color: "#000000", alias: "x" }, electrumx: {} }))
        assert.strictEqual(
          readFileSync(file, "utf8"),
          '{\n  "lnd": {\n    "alias": "x",\n    "color": "#000000"\n  }\n}\n'
        )
        assert.strictEqual(statSync(file).mode & 0o777, 0o600)
        assert.deepStrictEqual(yield* store.get, { lnd: { alias: "x", color: "#000000" } })
      })
    )
  )

  it.effect("a refused update writes nothing", () =>
    withStore((file, store) =>
      Effect.gen(function* () {
        yield* store.update(() => Effect.succeed({ lnd: { alias: "x" } }))
        const refused = yield* store.update(() => Effect.fail("no")).pipe(Effect.flip)
        assert.strictEqual(refused, "no")
        assert.deepStrictEqual(JSON.parse(readFileSync(file, "utf8")), { lnd: { alias: "x" } })
      })
    )
  )

  it.effect("a corrupt file is an error naming it, and is left as it is", () =>
    withStore((file, store) =>
      Effect.gen(function* () {
        for (const text of ["{not json", '{"lnd": ["alias"]}', '{"lnd": {"alias": null}}']) {
          writeFileSync(file, text)
          const error = yield* store.get.pipe(Effect.flip)
          assert.strictEqual(error._tag, "SettingsError")
          assert.include(error.message, file)
          assert.include(error.message, "fix or remove it")
          const update = yield* store.update((c) => Effect.succeed(c)).pipe(Effect.flip)
          assert.include(update.message, file)
          assert.strictEqual(readFileSync(file, "utf8"), text)
        }
      })
    )
  )
})
