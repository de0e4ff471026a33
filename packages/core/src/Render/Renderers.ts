/**
 * The registry of renderers a manifest may name, keyed by renderer id.
 */
import { bitcoinConf } from "./BitcoinConf.ts"
import { lndConf } from "./LndConf.ts"
import { bitcoinUiNginx } from "./NginxConf.ts"
import type { Renderer } from "./Renderer.ts"

export const renderers: ReadonlyMap<string, Renderer> = new Map(
  [bitcoinConf, lndConf, bitcoinUiNginx].map((renderer) => [renderer.id, renderer] as const)
)

export const findRenderer = (id: string): Renderer | undefined => renderers.get(id)
