/**
 * bitcoin.conf and the bitcoin-ui nginx.conf rendered for the same secret must agree: the Basic
 * credentials nginx injects have to pass bitcoind's rpcauth check. The check is redone here the
 * way bitcoind does it (split the Basic credentials on the first ':', HMAC-SHA256 keyed with the
 * salt's text over the password, compare with the line's hash), with node:crypto rather than
 * the renderers' own @noble code.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { bitcoinConf } from "../../src/Render/BitcoinConf.ts"
import type { Network } from "../../src/Render/Network.ts"
import { bitcoinUiNginx } from "../../src/Render/NginxConf.ts"
import { input, PASSWORD } from "./helpers.ts"

interface Rpcauth {
  readonly user: string
  readonly salt: string
  readonly hash: string
}

/** Every `rpcauth=` line of a bitcoin.conf, parsed as bitcoind does (`user:salt$hash`). */
const rpcauthLines = (conf: string): ReadonlyArray<Rpcauth> =>
  [...conf.matchAll(/^rpcauth=(.*)$/gm)].map((m) => {
    const value = m[1]!
    const colon = value.indexOf(":")
    assert.isAbove(colon, 0, `no user in rpcauth=${value}`)
    const [salt, hash, ...rest] = value.slice(colon + 1).split("$")
    assert.deepStrictEqual(rest, [], `more than one '$' in rpcauth=${value}`)
    assert.match(salt!, /^[0-9a-f]{32}$/, "salt")
    assert.match(hash!, /^[0-9a-f]{64}$/, "hash")
    return { user: value.slice(0, colon), salt: salt!, hash: hash! }
  })

/** The user and password nginx sends upstream, decoded with Buffer (not the renderer's Base64). */
const basicCredentials = (conf: string): { readonly user: string; readonly password: string } => {
  const found = [...conf.matchAll(/^\s*proxy_set_header Authorization "Basic ([A-Za-z0-9+/=]+)";$/gm)]
  assert.lengthOf(found, 1, "exactly one Authorization header in nginx.conf")
  const decoded = Buffer.from(found[0]![1]!, "base64").toString("utf8")
  // Basic auth, and bitcoind, split on the first ':'; the password may contain more.
  const colon = decoded.indexOf(":")
  assert.isAbove(colon, 0, "no user in the Basic credentials")
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

/** Whether bitcoind would let these credentials in: some rpcauth line with the user and the HMAC. */
const bitcoindAccepts = (bitcoin: string, credentials: { user: string; password: string }): boolean =>
  rpcauthLines(bitcoin).some((line) => {
    const mac = createHmac("sha256", line.salt).update(credentials.password, "utf8").digest()
    return line.user === credentials.user && timingSafeEqual(mac, Buffer.from(line.hash, "hex"))
  })

const render = (params: Record<string, string | number>, password: string) => ({
  bitcoin: bitcoinConf.render(input(params, password)),
  nginx: bitcoinUiNginx.render(input(params, password))
})

/** How SecretStore generates the value: 32 CSPRNG bytes, base64url. */
const generated = () => randomBytes(32).toString("base64url")

describe("bitcoin.conf rpcauth and the bitcoin-ui nginx.conf", () => {
  it("nginx's Basic credentials pass bitcoind's rpcauth check for the same secret", () => {
    const passwords = [PASSWORD, generated(), generated(), 'p:a"s$s#w;o}rd\\ ✓']
    for (const password of passwords) {
      const { bitcoin, nginx } = render({}, password)
      const lines = rpcauthLines(bitcoin)
      assert.lengthOf(lines, 1, bitcoin)
      const credentials = basicCredentials(nginx)
      assert.strictEqual(credentials.user, lines[0]!.user)
      assert.strictEqual(credentials.user, "archipelago")
      assert.strictEqual(credentials.password, password)
      const mac = createHmac("sha256", lines[0]!.salt).update(credentials.password, "utf8").digest("hex")
      assert.strictEqual(mac, lines[0]!.hash)
      assert.isTrue(bitcoindAccepts(bitcoin, credentials))
      // bitcoin.conf never holds the password itself.
      assert.notInclude(bitcoin, password)
    }
  })

  it("agrees for a non-default rpc user and on every network, proxying to bitcoind's rpcport", () => {
    const networks: ReadonlyArray<Network> = ["mainnet", "testnet", "signet", "regtest"]
    for (const network of networks) {
      for (const params of [{ network }, { network, rpcUser: "alice", rpcPort: 9001 }]) {
        const password = generated()
        const { bitcoin, nginx } = render(params, password)
        const credentials = basicCredentials(nginx)
        assert.strictEqual(credentials.user, "rpcUser" in params ? params.rpcUser : "archipelago")
        assert.isTrue(bitcoindAccepts(bitcoin, credentials), `${JSON.stringify(params)}\n${bitcoin}`)
        const rpcport = /^rpcport=(\d+)$/m.exec(bitcoin)?.[1]
        assert.isDefined(rpcport, bitcoin)
        const upstreams = [...nginx.matchAll(/proxy_pass http:\/\/host\.archipelago:(\d+)\/;/g)].map(
          (m) => m[1]
        )
        assert.deepStrictEqual(upstreams, [rpcport, rpcport], JSON.stringify(params))
      }
    }
  })

  it("the check rejects a different password, user or secret (it can fail)", () => {
    const password = generated()
    const { bitcoin, nginx } = render({}, password)
    const credentials = basicCredentials(nginx)
    assert.isTrue(bitcoindAccepts(bitcoin, credentials))
    const flipped = `${password.slice(0, -1)}${password.endsWith("A") ? "B" : "A"}`
    assert.isFalse(bitcoindAccepts(bitcoin, { ...credentials, password: flipped }))
    assert.isFalse(bitcoindAccepts(bitcoin, { ...credentials, user: "alice" }))
    // nginx rendered from another secret value, or for another user, is refused.
    assert.isFalse(bitcoindAccepts(bitcoin, basicCredentials(render({}, generated()).nginx)))
    assert.isFalse(
      bitcoindAccepts(bitcoin, basicCredentials(bitcoinUiNginx.render(input({ rpcUser: "alice" }, password))))
    )
  })
})
