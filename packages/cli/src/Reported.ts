/**
 * A failure the command already explained to the user: the process exits 1 without printing
 * anything more.
 */
import * as Data from "effect/Data"

export class Reported extends Data.TaggedError("Reported")<{}> {}
