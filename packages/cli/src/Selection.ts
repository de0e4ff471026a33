/**
 * Which apps the node runs. Until the daemon persists the user's choices, every command uses
 * the catalog's default set (each app marked `defaultInstalled`).
 */
import { type Catalog, Desired } from "@archy/core"

export const selectionOf = (catalog: Catalog.Catalog): Desired.Selection => Desired.defaultSelection(catalog)
