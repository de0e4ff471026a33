import { assert, describe, it } from "@effect/vitest"
import { parseAssignments, renderSettings } from "../src/commands/Configure.ts"

describe("archy configure", () => {
  it("reads KEY=VALUE words (a value may contain '=') and --reset keys", () => {
    assert.deepStrictEqual(parseAssignments(["prune=550", "alias=a=b", "txindex="], ["dbcache"]), {
      changes: { prune: "550", alias: "a=b", txindex: "", dbcache: null }
    })
    assert.deepStrictEqual(parseAssignments(["prune"], []), { error: 'expected KEY=VALUE, got "prune"' })
    assert.deepStrictEqual(parseAssignments(["=1"], []), { error: 'expected KEY=VALUE, got "=1"' })
  })

  it("lists each setting with its value, whether it is the default, its meaning and what it accepts", () => {
    const text = renderSettings("bitcoin-knots", [
      {
        key: "network",
        value: "signet",
        isDefault: false,
        default: "mainnet",
        type: "enum",
        expected: "one of mainnet, signet",
        description: "The chain"
      },
      {
        key: "prune",
        value: 0,
        isDefault: true,
        default: 0,
        type: "int",
        expected: "an integer >= 0 (MiB)",
        description: "Pruning"
      }
    ])
    assert.strictEqual(
      text,
      [
        "network  signet (default mainnet)",
        "         The chain",
        "         accepts one of mainnet, signet",
        "prune    0 (default)",
        "         Pruning",
        "         accepts an integer >= 0 (MiB)"
      ].join("\n")
    )
    assert.strictEqual(renderSettings("fx-worker", []), "fx-worker has no settings")
  })
})
