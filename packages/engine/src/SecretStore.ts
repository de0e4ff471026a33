/**
 * Canonical secrets: one file each in a 0700 directory, mode 0600, generated once from a CSPRNG
 * and never regenerated while the file exists. Values travel as `Redacted` so they print as
 * `<redacted>`. An empty or unreadable secret file is an error naming the file, never a silent
 * rotation (a rotated bitcoin RPC password is how LND lost its wallet connection in the field).
 */
import { randomBytes } from "node:crypto"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Path from "effect/Path"
import * as Redacted from "effect/Redacted"
import { writeAtomic } from "./AtomicFile.ts"

export class SecretError extends Data.TaggedError("SecretError")<{
  readonly file: string
  readonly reason: string
}> {
  override get message(): string {
    return `secret ${this.file}: ${this.reason}`
  }
}

/** Secret names are ids; anything else could escape the directory. */
const validName = (name: string) => /^[a-z0-9][a-z0-9-]{0,62}$/.test(name)

export class SecretStore extends Context.Service<
  SecretStore,
  {
    readonly dir: string
    /** Names of the secrets that exist. */
    readonly names: Effect.Effect<ReadonlyArray<string>, SecretError>
    /** The values of the named secrets that exist (missing ones are absent from the map). */
    readonly read: (
      names: ReadonlyArray<string>
    ) => Effect.Effect<ReadonlyMap<string, Redacted.Redacted<string>>, SecretError>
    /** Generates the secret unless its file exists. */
    readonly ensure: (name: string) => Effect.Effect<void, SecretError>
  }
>()("archy/engine/SecretStore") {
  /**
   * `randomBytes` is the CSPRNG (node's by default); the simulation passes a seeded one so a
   * run replays byte for byte.
   */
  static readonly layer = (
    dir: string,
    options: { readonly randomBytes?: (size: number) => Uint8Array } = {}
  ) =>
    Layer.effect(
      SecretStore,
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        const platform = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
        const fail = (file: string, reason: string) => new SecretError({ file, reason })
        const fileOf = (name: string) => path.join(dir, name)
        const ensureDir = fs.makeDirectory(dir, { recursive: true, mode: 0o700 }).pipe(
          Effect.andThen(fs.chmod(dir, 0o700)),
          Effect.mapError((e) => fail(dir, e.message))
        )

        const names = fs.exists(dir).pipe(
          Effect.flatMap((exists) => (exists ? fs.readDirectory(dir) : Effect.succeed([]))),
          Effect.map((entries) => entries.filter(validName).sort()),
          Effect.mapError((e) => fail(dir, e.message))
        )

        const readOne = (name: string) =>
          fs.readFileString(fileOf(name)).pipe(
            Effect.mapError((e) => fail(fileOf(name), e.message)),
            Effect.flatMap((text) => {
              const value = text.trim()
              return value.length === 0
                ? Effect.fail(
                    fail(
                      fileOf(name),
                      "is empty; restore it from a backup or remove it to generate a new one"
                    )
                  )
                : Effect.succeed(Redacted.make(value))
            })
          )

        const read = (wanted: ReadonlyArray<string>) =>
          Effect.gen(function* () {
            const present = new Set(yield* names)
            const out = new Map<string, Redacted.Redacted<string>>()
            for (const name of wanted) if (present.has(name)) out.set(name, yield* readOne(name))
            return out as ReadonlyMap<string, Redacted.Redacted<string>>
          })

        const ensure = Effect.fn("SecretStore.ensure")(function* (name: string) {
          if (!validName(name)) return yield* fail(fileOf(name), "is not a valid secret name")
          yield* ensureDir
          if (yield* fs.exists(fileOf(name)).pipe(Effect.mapError((e) => fail(fileOf(name), e.message))))
            return
          // 32 random bytes, base64url: no characters that need quoting in any config format.
          const value = Buffer.from((options.randomBytes ?? randomBytes)(32)).toString("base64url")
          yield* writeAtomic(fileOf(name), new TextEncoder().encode(`${value}\n`), { mode: 0o600 }).pipe(
            Effect.provideContext(platform),
            Effect.mapError((e) => fail(fileOf(name), e.message))
          )
        })

        return SecretStore.of({ dir, names, read, ensure })
      })
    )
}
