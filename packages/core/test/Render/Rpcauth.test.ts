import { assert, describe, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import { rpcauthHmac, rpcauthLine, rpcauthSalt } from "../../src/Render/Rpcauth.ts"
import { PASSWORD, renderError } from "./helpers.ts"

const pw = Redacted.make(PASSWORD)

describe("Rpcauth", () => {
  it("computes the HMAC exactly as Bitcoin Core's rpcauth.py", () => {
    // python3 -c "import hmac; print(hmac.new('0123456789abcdef0123456789abcdef'.encode(),
    //   'correct horse battery staple'.encode(), 'sha256').hexdigest())"
    assert.strictEqual(
      rpcauthHmac("0123456789abcdef0123456789abcdef", pw),
      "90ff3ce205bece1c447b777562931b92721a1956552484506bf368ee0278bcd3"
    )
  })

  it("derives the salt from the password", () => {
    // python3 -c "import hmac; print(hmac.new('correct horse battery staple'.encode(),
    //   b'archipelago rpcauth salt v1', 'sha256').hexdigest()[:32])"
    assert.strictEqual(rpcauthSalt(pw), "292f30144ccb63a7a794928e5842736c")
    // python3 -c "import hmac; print(hmac.new('hunter2'.encode(), b'archipelago rpcauth salt v1',
    //   'sha256').hexdigest()[:32])"
    assert.strictEqual(rpcauthSalt(Redacted.make("hunter2")), "0e7127e31fd5cad8070ceefee8003884")
  })

  it("renders the full rpcauth line", () => {
    // python3 -c "import hmac; print(hmac.new('292f30144ccb63a7a794928e5842736c'.encode(),
    //   'correct horse battery staple'.encode(), 'sha256').hexdigest())"
    assert.strictEqual(
      rpcauthLine("archipelago", pw),
      "rpcauth=archipelago:292f30144ccb63a7a794928e5842736c$3eb60ece4847333a5b96db8410137508b84a7cc6882d3bddfde5af8580972cf1"
    )
  })

  it("hashes non-ASCII passwords as utf-8", () => {
    // p = 'pässwörd ✓'
    // s = hmac.new(p.encode(), b'archipelago rpcauth salt v1', 'sha256').hexdigest()[:32]
    // print(s, hmac.new(s.encode(), p.encode(), 'sha256').hexdigest())
    assert.strictEqual(
      rpcauthLine("u", Redacted.make("pässwörd ✓")),
      "rpcauth=u:e0f5bbb0a6bbe7f20d322ea2807a7225$4a8449d3c3c013ce4d26f14cb1101489406f719bed30f5239b32d155c6dde6f0"
    )
  })

  it("is stable across calls", () => {
    assert.strictEqual(rpcauthLine("archipelago", pw), rpcauthLine("archipelago", Redacted.make(PASSWORD)))
  })

  it("rejects users bitcoind could not parse and empty passwords", () => {
    for (const user of ["", "a:b", "a b", "a\tb", "a#b", "a\nb"]) {
      const error = renderError(() => rpcauthLine(user, pw))
      assert.strictEqual(error.renderer, "rpcauth")
      assert.include(error.reason, "rpc user")
    }
    assert.include(renderError(() => rpcauthLine("archipelago", Redacted.make(""))).reason, "password")
  })
})
