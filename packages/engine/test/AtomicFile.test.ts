/**
 * writeAtomic and SecretStore.ensure on real files when the write cannot complete: a rename
 * refused after the temporary file was written (an immutable target, a directory in the way) and
 * a full disk (a 64 KiB tmpfs). Each time the old file must be intact, byte for byte, no
 * temporary file may be left behind, and the error must say what failed.
 */
import { spawnSync } from "node:child_process"
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { afterAll, afterEach, assert, beforeAll, describe, it } from "vitest"
import { writeAtomic } from "../src/AtomicFile.ts"
import { SecretError, SecretStore } from "../src/SecretStore.ts"

const run = <A, E>(effect: Effect.Effect<A, E, NodeServices.NodeServices>): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.provide(NodeServices.layer)))

/** Runs `effect`, which must fail, and resolves with its error. */
const failure = <A, E>(effect: Effect.Effect<A, E, NodeServices.NodeServices>): Promise<E> =>
  run(
    effect.pipe(
      Effect.flatMap((a) => Effect.die(new Error(`expected a failure, got ${JSON.stringify(a)}`))),
      Effect.flip
    )
  )

type Store = Parameters<typeof SecretStore.of>[0]

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))

interface SeenError {
  readonly message: string
  readonly step: RegExp
  readonly file: string
  readonly reason: RegExp
}

/**
 * The errors the scenarios below ended with (their `.message`, which a reconcile pass reports as
 * the action's error), checked at the end for what they tell an operator.
 */
const seen = new Map<string, SeenError>()

/** An error message an operator can act on: which step, on which file, and why. */
const saysWhatFailed = (scenario: string) => {
  const e = seen.get(scenario)
  assert.isDefined(e, `the ${scenario} scenario did not get to its failure`)
  assert.match(e!.message, e!.step, `the failed step is not named: ${e!.message}`)
  assert.include(e!.message, e!.file, `the target file is not named: ${e!.message}`)
  assert.match(e!.message, e!.reason, `the system's reason is not given: ${e!.message}`)
}

/** Random bytes of every value, so a torn or truncated copy cannot pass for the original. */
const bytes = (n: number, seed: number): Uint8Array => {
  const out = new Uint8Array(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

const isRoot = process.getuid?.() === 0

/** Skips (with the reason) when `why` is set, except under CI=true, where it fails instead. */
const prerequisite = (what: string, why: string | undefined): string | undefined => {
  if (why === undefined) return undefined
  if (process.env.CI === "true") throw new Error(`CI=true but ${what} cannot run: ${why}`)
  console.warn(`skipping ${what}: ${why}`)
  return why
}

const immutableMissing = prerequisite(
  "the immutable-target test",
  isRoot ? undefined : "chattr +i needs root (CAP_LINUX_IMMUTABLE)"
)
const tmpfsMissing = prerequisite("the full-disk tests", isRoot ? undefined : "mounting a tmpfs needs root")

const dirs: Array<string> = []
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "archy-atomic-"))
  dirs.push(dir)
  return dir
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe("writeAtomic: the rename fails after the temporary file was written", () => {
  const immutable: Array<string> = []
  afterEach(() => {
    for (const f of immutable.splice(0)) spawnSync("chattr", ["-i", f])
  })

  // chattr +i stops root too: the temporary file is created, written and synced in the (writable)
  // directory, then rename(2) over the immutable target fails with EPERM.
  it.skipIf(immutableMissing !== undefined)(
    "over an immutable target (chattr +i): the old file is intact and byte-equal, no temp is left",
    async () => {
      const dir = tempDir()
      const file = join(dir, "bitcoin.conf")
      const old = bytes(4096, 7)
      await run(writeAtomic(file, old, { mode: 0o600 }))
      const made = spawnSync("chattr", ["+i", file], { encoding: "utf8" })
      assert.strictEqual(made.status, 0, `chattr +i ${file}: ${made.stderr}${made.error ?? ""}`)
      immutable.push(file)

      const error = await failure(writeAtomic(file, bytes(8192, 9), { mode: 0o600 }))

      assert.deepStrictEqual(new Uint8Array(readFileSync(file)), old)
      assert.strictEqual(statSync(file).mode & 0o7777, 0o600)
      assert.deepStrictEqual(readdirSync(dir), ["bitcoin.conf"])

      // Once the target can be replaced again, the same write goes through.
      spawnSync("chattr", ["-i", file])
      const next = bytes(8192, 9)
      await run(writeAtomic(file, next, { mode: 0o640 }))
      assert.deepStrictEqual(new Uint8Array(readFileSync(file)), next)
      assert.strictEqual(statSync(file).mode & 0o7777, 0o640)
      assert.deepStrictEqual(readdirSync(dir), ["bitcoin.conf"])

      seen.set("immutable", {
        message: messageOf(error),
        step: /rename/i,
        file,
        reason: /EPERM|not permitted|PermissionDenied/i
      })
    }
  )

  it("over a non-empty directory: the directory and its file are intact, no temp is left", async () => {
    const dir = tempDir()
    const target = join(dir, "lnd.conf")
    mkdirSync(target)
    const inside = bytes(1024, 3)
    writeFileSync(join(target, "keep"), inside)
    const sibling = join(dir, "other.conf")
    const siblingBytes = bytes(333, 5)
    await run(writeAtomic(sibling, siblingBytes, { mode: 0o600 }))

    const error = await failure(writeAtomic(target, bytes(2048, 4), { mode: 0o600 }))

    assert.isTrue(statSync(target).isDirectory())
    assert.deepStrictEqual(readdirSync(target), ["keep"])
    assert.deepStrictEqual(new Uint8Array(readFileSync(join(target, "keep"))), inside)
    assert.deepStrictEqual(new Uint8Array(readFileSync(sibling)), siblingBytes)
    assert.deepStrictEqual(readdirSync(dir).sort(), ["lnd.conf", "other.conf"])

    seen.set("directory", {
      message: messageOf(error),
      step: /rename/i,
      file: target,
      reason: /EISDIR|ENOTEMPTY|is a directory|illegal operation on a directory/i
    })
  })
})

// ---------------------------------------------------------------------------------------------
// A full disk

describe.skipIf(tmpfsMissing !== undefined)("a full disk (a 64 KiB tmpfs)", () => {
  let base = ""
  let mnt = ""
  let mounted = false

  beforeAll(() => {
    base = tempDir()
    mnt = join(base, "tiny")
    mkdirSync(mnt)
    const r = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", mnt], {
      encoding: "utf8"
    })
    assert.strictEqual(r.status, 0, `mount -t tmpfs -o size=64k tmpfs ${mnt}: ${r.stderr}${r.error ?? ""}`)
    mounted = true
  })

  afterAll(() => {
    if (mounted) {
      const r = spawnSync("umount", [mnt], { encoding: "utf8" })
      if (r.status !== 0) spawnSync("umount", ["-l", mnt])
    }
  })

  /** Fills the tmpfs to the last page: a new file can be created but not given any byte. */
  const fill = (dir: string): string => {
    const filler = join(dir, "filler")
    try {
      writeFileSync(filler, new Uint8Array(1 << 20))
      assert.fail("a 1 MiB file fit on a 64 KiB tmpfs")
    } catch (e) {
      assert.strictEqual((e as NodeJS.ErrnoException).code, "ENOSPC", messageOf(e))
    }
    // The partial filler holds every page; one more byte anywhere does not fit.
    const probe = join(dir, "probe")
    try {
      writeFileSync(probe, "x")
      assert.fail("the tmpfs still had room after filling it")
    } catch (e) {
      assert.strictEqual((e as NodeJS.ErrnoException).code, "ENOSPC", messageOf(e))
    } finally {
      rmSync(probe, { force: true })
    }
    return filler
  }

  it("writeAtomic of 200 KiB fails with ENOSPC; the 1 KiB file is intact and no temp is left", async () => {
    const dir = join(mnt, "write")
    mkdirSync(dir)
    const file = join(dir, "lnd.conf")
    const old = bytes(1024, 11)
    await run(writeAtomic(file, old, { mode: 0o600 }))
    const freeBefore = statfsSync(mnt).bfree

    const error = await failure(writeAtomic(file, bytes(200 * 1024, 12), { mode: 0o600 }))

    assert.deepStrictEqual(new Uint8Array(readFileSync(file)), old)
    assert.strictEqual(statSync(file).mode & 0o7777, 0o600)
    assert.deepStrictEqual(readdirSync(dir), ["lnd.conf"])
    // The partial temporary file's pages were given back.
    assert.strictEqual(statfsSync(mnt).bfree, freeBefore)

    // A write that fits still goes through.
    const small = bytes(2048, 13)
    await run(writeAtomic(file, small, { mode: 0o600 }))
    assert.deepStrictEqual(new Uint8Array(readFileSync(file)), small)
    assert.deepStrictEqual(readdirSync(dir), ["lnd.conf"])
    rmSync(dir, { recursive: true })

    seen.set("full disk", {
      message: messageOf(error),
      step: /write/i,
      file,
      reason: /ENOSPC|no space left/i
    })
  })

  it("SecretStore.ensure fails with a SecretError naming the file and leaves no secret file; with room it generates it", async () => {
    const secrets = join(mnt, "secrets")
    const store = SecretStore.layer(secrets).pipe(Layer.provide(NodeServices.layer))
    const withStore = <A, E>(f: (s: Store) => Effect.Effect<A, E>) =>
      Effect.gen(function* () {
        return yield* f(yield* SecretStore)
      }).pipe(Effect.provide(store))
    // One secret exists before the disk fills (it also makes the 0700 directory).
    await run(withStore((s) => s.ensure("api-token")))
    const token = readFileSync(join(secrets, "api-token"))
    const filler = fill(mnt)

    const file = join(secrets, "bitcoin-rpc-password")
    const error = await failure(withStore((s) => s.ensure("bitcoin-rpc-password")))
    assert.instanceOf(error, SecretError)
    assert.strictEqual(error.file, file)
    assert.include(error.message, file)
    seen.set("secret on a full disk", {
      message: error.message,
      step: /write/i,
      file,
      reason: /ENOSPC|no space left/i
    })
    assert.isFalse(existsSync(file), "an empty or partial secret file was left behind")
    assert.deepStrictEqual(readdirSync(secrets), ["api-token"])
    assert.deepStrictEqual(await run(withStore((s) => s.names)), ["api-token"])
    assert.strictEqual((await run(withStore((s) => s.read(["bitcoin-rpc-password"])))).size, 0)
    assert.deepStrictEqual(readFileSync(join(secrets, "api-token")), token)

    // With room again, the next ensure generates it normally.
    rmSync(filler)
    await run(withStore((s) => s.ensure("bitcoin-rpc-password")))
    const value = readFileSync(file, "utf8")
    assert.match(value, /^[A-Za-z0-9_-]{43}\n$/)
    assert.strictEqual(statSync(file).mode & 0o7777, 0o600)
    assert.strictEqual(statSync(secrets).mode & 0o7777, 0o700)
    assert.deepStrictEqual(readdirSync(secrets).sort(), ["api-token", "bitcoin-rpc-password"])
    const read = await run(withStore((s) => s.read(["bitcoin-rpc-password"])))
    assert.strictEqual(Redacted.value(read.get("bitcoin-rpc-password")!), value.trim())
    // And it is never regenerated.
    await run(withStore((s) => s.ensure("bitcoin-rpc-password")))
    assert.strictEqual(readFileSync(file, "utf8"), value)
  })
})

describe("the error says which step failed, on which file, and why", () => {
  it.skipIf(immutableMissing !== undefined)("rename over an immutable file: EPERM", () =>
    saysWhatFailed("immutable")
  )
  it("rename over a directory: EISDIR", () => saysWhatFailed("directory"))
  it.skipIf(tmpfsMissing !== undefined)("write on a full disk: ENOSPC", () => saysWhatFailed("full disk"))
  it.skipIf(tmpfsMissing !== undefined)("SecretStore.ensure on a full disk: ENOSPC", () =>
    saysWhatFailed("secret on a full disk")
  )
})
