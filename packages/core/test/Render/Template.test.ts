import { createHash } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import type { RenderInput } from "../../src/Render/Renderer.ts"
import { rpcauthLine } from "../../src/Render/Rpcauth.ts"
import { checkTemplate, parseTemplate, templateRenderer } from "../../src/Render/Template.ts"
import { renderError } from "./helpers.ts"

const secrets = (entries: Record<string, string>): RenderInput["secrets"] =>
  new Map(Object.entries(entries).map(([k, v]) => [k, Redacted.make(v)]))

describe("template renderer", () => {
  it("fills secrets, params and rpcauth, and applies the json and sha256 filters", () => {
    const template = [
      "user={{ param:user }}",
      'json="{{secret:db-password|json}}"',
      "hash={{secret:db-password | sha256}}",
      "rpcauth={{rpcauth:archipelago:bitcoin-rpc-password}}",
      "again={{param:user}}",
      "literal } and { stay"
    ].join("\n")
    const out = templateRenderer("app.conf", template).render({
      secrets: secrets({ "db-password": 'pa"ss\\word', "bitcoin-rpc-password": "rpc-secret" }),
      params: { user: "alice" }
    })
    const rpcauth = rpcauthLine("archipelago", Redacted.make("rpc-secret"))
    assert.strictEqual(
      out,
      [
        "user=alice",
        'json="pa\\"ss\\\\word"',
        `hash=${createHash("sha256").update('pa"ss\\word').digest("hex")}`,
        rpcauth,
        "again=alice",
        "literal } and { stay"
      ].join("\n")
    )
  })

  it("declares exactly the secrets its placeholders read", () => {
    const r = templateRenderer("x", "{{secret:b}} {{rpcauth:u:a}} {{param:p}} {{secret:b|json}}")
    assert.deepStrictEqual(r.secrets, ["a", "b"])
    assert.strictEqual(r.id, "template:x")
  })

  it("inserts '$' sequences in values literally", () => {
    const out = templateRenderer("x", "v={{secret:s}}").render({
      secrets: secrets({ s: "$&$1$$" }),
      params: {}
    })
    assert.strictEqual(out, "v=$&$1$$")
  })

  it("renders the whole file or nothing: a missing secret is an error naming it", () => {
    const e = renderError(() =>
      templateRenderer("db.conf", "a={{secret:one}}\nb={{secret:two}}").render({
        secrets: secrets({ one: "1" }),
        params: {}
      })
    )
    assert.strictEqual(e.message, 'renderer template:db.conf: missing secret "two"')
  })

  it("refuses a value that would break out of its line, without showing the value", () => {
    const e = renderError(() =>
      templateRenderer("x", "a={{secret:s}}").render({
        secrets: secrets({ s: "ok\nrpcallowip=0.0.0.0/0" }),
        params: {}
      })
    )
    assert.include(e.message, "{{secret:s}}")
    assert.notInclude(e.message, "rpcallowip")
  })

  it("refuses an empty secret", () => {
    const e = renderError(() =>
      templateRenderer("x", "a={{secret:s}}").render({ secrets: secrets({ s: "" }), params: {} })
    )
    assert.include(e.message, 'secret "s" is empty')
  })
})

describe("parseTemplate and checkTemplate", () => {
  it("names each malformed or unknown placeholder with its line", () => {
    const { problems } = parseTemplate(
      ["ok={{secret:a}}", "x={{password}}", "y={{secret:a|base64}}", "z={{env:HOME}}", "w={{secret:a"].join(
        "\n"
      )
    )
    assert.deepStrictEqual(problems, [
      "line 2: placeholder {{password}} is unknown (expected {{secret:NAME}}, {{param:NAME}} or {{rpcauth:USER:SECRET}}, optionally followed by |json or |sha256)",
      "line 3: placeholder {{secret:a|base64}} has an unknown filter (known: |json, |sha256)",
      "line 4: placeholder {{env:HOME}} is unknown (expected {{secret:NAME}}, {{param:NAME}} or {{rpcauth:USER:SECRET}}, optionally followed by |json or |sha256)",
      'line 5: "{{" is never closed with "}}"'
    ])
  })

  it("leaves JSON's closing braces alone", () => {
    assert.deepStrictEqual(parseTemplate('{"a":{"b":"{{param:x}}"}}').problems, [])
  })

  it("flags secrets the app does not declare, params the entry does not give, bad rpcauth users", () => {
    assert.deepStrictEqual(
      checkTemplate("{{secret:a}} {{secret:b}} {{param:p}} {{param:q}} {{rpcauth:bad#user:a}}", {
        secrets: ["a"],
        params: { p: 1 }
      }),
      [
        'line 1: placeholder {{secret:b}} names secret "b", not declared in the app\'s secrets',
        'line 1: placeholder {{param:q}} names param "q", which the manifest\'s params do not give',
        "line 1: placeholder {{rpcauth:bad#user:a}}: rpc user \"bad#user\" must not contain ':', '#', whitespace or control characters"
      ]
    )
  })

  it("a renderer of a malformed template fails instead of writing it half-filled", () => {
    const e = renderError(() => templateRenderer("x", "{{oops}}").render({ secrets: new Map(), params: {} }))
    assert.include(e.message, "{{oops}}")
  })
})
