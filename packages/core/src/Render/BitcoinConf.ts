/**
 * bitcoin.conf for the bitcoind container. RPC access is granted only through an `rpcauth=`
 * line, so the plain RPC password never lands in this file; lnd and the UI proxy hold it instead.
 */
import { bitcoindChain, defaultRpcPort, type Network, networkParam, RPC_PASSWORD_SECRET } from "./Network.ts"
import {
  boolParam,
  fail,
  generatedHeader,
  intParam,
  optionalBoolParam,
  rejectUnknownParams,
  requireSecret,
  stringParam
} from "./Params.ts"
import type { Renderer, RenderInput } from "./Renderer.ts"
import { rpcauthLine, validateRpcPassword, validateRpcUser } from "./Rpcauth.ts"

const ID = "bitcoin-conf"

/** The podman network archipelago containers share; lnd and the UI proxy reach RPC from it. */
export const ARCHIPELAGO_SUBNET = "10.89.0.0/24"

const PARAMS = ["network", "rpcUser", "rpcPort", "prune", "txindex", "zmq", "dbcache"] as const

interface BitcoinConfParams {
  readonly network: Network
  readonly rpcUser: string
  readonly rpcPort: number
  readonly prune: number
  readonly txindex: boolean
  readonly zmq: boolean
  readonly dbcache: number
}

const readParams = (params: RenderInput["params"]): BitcoinConfParams => {
  rejectUnknownParams(ID, params, PARAMS)
  const network = networkParam(ID, params)
  const prune = intParam(ID, params, "prune", 0, { min: 0, max: 1_000_000_000 })
  // 1 means "manual pruning"; bitcoind refuses automatic targets below 550 MiB.
  if (prune > 1 && prune < 550) fail(ID, `param "prune" must be 0 (off), 1 (manual) or at least 550 MiB`)
  const explicitTxindex = optionalBoolParam(ID, params, "txindex")
  // bitcoind refuses to start with both, so an explicit clash is an error, while a pruned node
  // that says nothing about txindex simply gets none.
  if (explicitTxindex === true && prune > 0) fail(ID, `params "prune" and "txindex" are mutually exclusive`)
  return {
    network,
    rpcUser: validateRpcUser(ID, stringParam(ID, params, "rpcUser", "archipelago")),
    rpcPort: intParam(ID, params, "rpcPort", defaultRpcPort[network], { min: 1, max: 65535 }),
    prune,
    txindex: explicitTxindex ?? prune === 0,
    zmq: boolParam(ID, params, "zmq", true),
    dbcache: intParam(ID, params, "dbcache", 450, { min: 4, max: 1_000_000 })
  }
}

const render = (input: RenderInput): string => {
  const p = readParams(input.params)
  const password = requireSecret(ID, input, RPC_PASSWORD_SECRET)
  validateRpcPassword(ID, password)

  const global = ["server=1", `txindex=${p.txindex ? 1 : 0}`, `prune=${p.prune}`, `dbcache=${p.dbcache}`]
  const rpc = [
    rpcauthLine(p.rpcUser, password),
    "rpcbind=0.0.0.0",
    `rpcallowip=${ARCHIPELAGO_SUBNET}`,
    "rpcallowip=127.0.0.1",
    `rpcport=${p.rpcPort}`,
    ...(p.zmq ? ["zmqpubrawblock=tcp://0.0.0.0:28332", "zmqpubrawtx=tcp://0.0.0.0:28333"] : [])
  ]

  const lines =
    p.network === "mainnet"
      ? [generatedHeader(ID), ...global, ...rpc]
      : // Off mainnet bitcoind ignores rpcport/rpcbind outside the chain's own section, so the
        // whole RPC/ZMQ block goes there.
        [
          generatedHeader(ID),
          `${bitcoindChain[p.network].flag}=1`,
          ...global,
          "",
          `[${bitcoindChain[p.network].section}]`,
          ...rpc
        ]
  return `${lines.join("\n")}\n`
}

export const bitcoinConf: Renderer = {
  id: ID,
  description: "bitcoin.conf for bitcoind: rpcauth-only RPC on the archipelago network, ZMQ, chain section",
  secrets: [RPC_PASSWORD_SECRET],
  render
}
