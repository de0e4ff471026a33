/**
 * The Bitcoin networks archy can run, and the per-network facts several renderers must agree on
 * (bitcoind's default RPC port, its config section name, the RPC password secret's name).
 */

import { oneOfParam } from "./Params.ts"
import type { RenderInput } from "./Renderer.ts"

/** The canonical secret bitcoind RPC authenticates with; bitcoind, lnd and the UI proxy share it. */
export const RPC_PASSWORD_SECRET = "bitcoin-rpc-password"

/** `testnet` is testnet3, which bitcoind is phasing out; `testnet4` is BIP94's (bitcoind 28+). */
export type Network = "mainnet" | "testnet" | "testnet4" | "signet" | "regtest"

export const networks: ReadonlyArray<Network> = ["mainnet", "testnet", "testnet4", "signet", "regtest"]

/** bitcoind's default RPC port per network; lnd and the UI proxy assume these. */
export const defaultRpcPort: Readonly<Record<Network, number>> = {
  mainnet: 8332,
  testnet: 18332,
  testnet4: 48332,
  signet: 38332,
  regtest: 18443
}

/**
 * The bitcoin.conf section a non-mainnet chain reads its network-only options (rpcport, rpcbind)
 * from, and the flag that selects the chain. Testnet's section is `[test]`, not `[testnet]`.
 */
export const bitcoindChain: Readonly<Record<Exclude<Network, "mainnet">, { section: string; flag: string }>> =
  {
    testnet: { section: "test", flag: "testnet" },
    testnet4: { section: "testnet4", flag: "testnet4" },
    signet: { section: "signet", flag: "signet" },
    regtest: { section: "regtest", flag: "regtest" }
  }

export const networkParam = (renderer: string, params: RenderInput["params"]): Network =>
  oneOfParam(renderer, params, "network", networks, "mainnet")
