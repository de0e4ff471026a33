/**
 * lnd.conf for the lnd container, wired to bitcoind over the archipelago network. Unlike
 * bitcoin.conf this file carries the plain RPC password (lnd has no rpcauth equivalent); it is
 * written mode 0600 inside lnd's data dir.
 */
import { utf8ToBytes } from "@noble/hashes/utils.js"
import { defaultRpcPort, networkParam, RPC_PASSWORD_SECRET } from "./Network.ts"
import {
  assertSingleLine,
  boolParam,
  fail,
  generatedHeader,
  intParam,
  rejectUnknownParams,
  requireSecret,
  stringParam
} from "./Params.ts"
import type { Renderer, RenderInput } from "./Renderer.ts"
import { validateRpcPassword, validateRpcUser } from "./Rpcauth.ts"

const ID = "lnd-conf"
const PARAMS = ["network", "alias", "color", "rpcUser", "rpcPort", "zmq"] as const

/**
 * lnd's ini parser trims values and unquotes any value starting with '"', so such values are
 * written as a quoted string; JSON string syntax is a subset of what it unquotes once control
 * characters (rejected earlier) are out of the picture.
 */
const iniValue = (value: string): string => (/^[\s"]|\s$/.test(value) ? JSON.stringify(value) : value)

const render = (input: RenderInput): string => {
  rejectUnknownParams(ID, input.params, PARAMS)
  const network = networkParam(ID, input.params)
  const alias = stringParam(ID, input.params, "alias", "archipelago")
  // lnd refuses aliases longer than 32 bytes at startup; fail at render time instead.
  if (alias.length === 0 || utf8ToBytes(alias).length > 32) fail(ID, `param "alias" must be 1 to 32 bytes`)
  // lnd's own default color applies when none is given.
  const color = input.params.color === undefined ? undefined : stringParam(ID, input.params, "color", "")
  if (color !== undefined && !/^#[0-9a-fA-F]{6}$/.test(color))
    fail(ID, `param "color" must be a hex color such as #3399ff`)
  // Without bitcoind's ZMQ feeds lnd polls its RPC for new blocks and transactions instead.
  const zmq = boolParam(ID, input.params, "zmq", true)
  const rpcUser = validateRpcUser(ID, stringParam(ID, input.params, "rpcUser", "archipelago"))
  const rpcPort = intParam(ID, input.params, "rpcPort", defaultRpcPort[network], { min: 1, max: 65535 })
  const password = assertSingleLine(
    ID,
    `secret "${RPC_PASSWORD_SECRET}"`,
    validateRpcPassword(ID, requireSecret(ID, input, RPC_PASSWORD_SECRET))
  )

  const lines = [
    generatedHeader(ID),
    "",
    "[Application Options]",
    "listen=0.0.0.0:9735",
    "rpclisten=0.0.0.0:10009",
    "restlisten=0.0.0.0:8080",
    `alias=${iniValue(alias)}`,
    ...(color !== undefined ? [`color=${color}`] : []),
    "tlsextradomain=host.archipelago",
    "",
    "[Bitcoin]",
    "bitcoin.active=1",
    `bitcoin.${network}=1`,
    "bitcoin.node=bitcoind",
    "",
    "[Bitcoind]",
    `bitcoind.rpchost=host.archipelago:${rpcPort}`,
    `bitcoind.rpcuser=${rpcUser}`,
    `bitcoind.rpcpass=${iniValue(password)}`,
    ...(zmq
      ? [
          "bitcoind.zmqpubrawblock=tcp://host.archipelago:28332",
          "bitcoind.zmqpubrawtx=tcp://host.archipelago:28333"
        ]
      : ["bitcoind.rpcpolling=true"])
  ]
  return `${lines.join("\n")}\n`
}

export const lndConf: Renderer = {
  id: ID,
  description: "lnd.conf for lnd: listeners, alias, and the bitcoind backend on host.archipelago",
  secrets: [RPC_PASSWORD_SECRET],
  render
}
