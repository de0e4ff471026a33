/**
 * An in-memory `FileSystem` for the simulation: files, directories, modes, owners and mtimes
 * (from the `Clock`, so `TestClock` drives them), with one hook before every call that may fail
 * it or crash the process there. It owns the disk, which outlives a daemon crash; it does not own
 * fault decisions (the hook's caller does).
 *
 * A crash inside a write leaves a prefix of the bytes in the file being written (a torn write):
 * the engine's atomic writes must make sure that file is only ever a temporary one. Writes are
 * otherwise durable at once (no page cache to lose).
 */
import * as ByteSize from "effect/ByteSize"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as PlatformError from "effect/PlatformError"

export type FsOp =
  | "makeDirectory"
  | "open"
  | "write"
  | "sync"
  | "chmod"
  | "chown"
  | "rename"
  | "remove"
  | "exists"
  | "readDirectory"
  | "readFile"
  | "stat"

/** What the hook decides for one call. `keep` is the fraction of a write's bytes that land before a crash. */
export type FsDecision =
  | { readonly _tag: "Proceed" }
  | { readonly _tag: "Fail"; readonly code: "EIO" | "ENOSPC" | "EACCES" }
  | { readonly _tag: "Crash"; readonly keep: number }

export type FsHook = (op: FsOp, path: string) => FsDecision

export interface FileNode {
  readonly type: "File"
  bytes: Uint8Array
  mode: number
  uid: number
  gid: number
  mtimeMs: number
}

export interface DirectoryNode {
  readonly type: "Directory"
  mode: number
  uid: number
  gid: number
  mtimeMs: number
}

export type Node = FileNode | DirectoryNode

/** The disk: absolute, normalised paths to nodes. Survives a daemon crash. */
export interface Disk {
  readonly nodes: Map<string, Node>
}

/** Raised (as a defect) when the hook crashes the process: nothing after it runs. */
export class ProcessCrash extends Error {
  readonly where: string
  constructor(where: string) {
    super(`simulated crash at ${where}`)
    this.name = "ProcessCrash"
    this.where = where
  }
}

export const makeDisk = (): Disk => ({
  nodes: new Map([["/", { type: "Directory", mode: 0o755, uid: 0, gid: 0, mtimeMs: 0 }]])
})

const normalise = (path: string): string => {
  const parts: Array<string> = []
  for (const p of path.split("/")) {
    if (p === "" || p === ".") continue
    if (p === "..") parts.pop()
    else parts.push(p)
  }
  return `/${parts.join("/")}`
}

const parentOf = (path: string): string => {
  const i = path.lastIndexOf("/")
  return i <= 0 ? "/" : path.slice(0, i)
}

const codeTag = {
  ENOENT: "NotFound",
  EEXIST: "AlreadyExists",
  EISDIR: "BadResource",
  ENOTDIR: "BadResource",
  ENOTEMPTY: "Busy",
  EIO: "Unknown",
  ENOSPC: "WriteZero",
  EACCES: "PermissionDenied"
} as const

const sysError = (code: keyof typeof codeTag, method: string, path: string) =>
  PlatformError.systemError({
    _tag: codeTag[code],
    module: "FileSystem",
    method,
    pathOrDescriptor: path,
    description: `${code}: ${method} ${path}`,
    cause: new Error(`${code}: ${method} '${path}'`)
  })

/** Writes files straight onto a disk, outside any hook (seeding the catalog, test setup). */
export const seedFile = (disk: Disk, path: string, text: string, mode = 0o644): void => {
  const p = normalise(path)
  let dir = parentOf(p)
  const dirs: Array<string> = []
  while (!disk.nodes.has(dir)) {
    dirs.push(dir)
    dir = parentOf(dir)
  }
  for (const d of dirs.reverse())
    disk.nodes.set(d, { type: "Directory", mode: 0o755, uid: 0, gid: 0, mtimeMs: 0 })
  disk.nodes.set(p, { type: "File", bytes: new TextEncoder().encode(text), mode, uid: 0, gid: 0, mtimeMs: 0 })
}

/** A FileSystem over `disk`; `hook` sees every call first. */
export const make = (disk: Disk, hook: FsHook): FileSystem.FileSystem => {
  const nodes = disk.nodes
  const gate = (op: FsOp, path: string) =>
    Effect.suspend(() => {
      const d = hook(op, path)
      if (d._tag === "Proceed") return Effect.void
      if (d._tag === "Crash") return Effect.die(new ProcessCrash(`${op} ${path}`))
      return Effect.fail(sysError(d.code, op, path))
    })

  const info = (node: Node): FileSystem.File.Info =>
    ({
      type: node.type,
      mtime: Option.some(new Date(node.mtimeMs)),
      atime: Option.some(new Date(node.mtimeMs)),
      birthtime: Option.none(),
      dev: 0n,
      ino: Option.none(),
      mode: (node.type === "File" ? 0o100000 : 0o040000) | node.mode,
      nlink: Option.none(),
      uid: Option.some(node.uid),
      gid: Option.some(node.gid),
      rdev: Option.none(),
      size: ByteSize.bytes(node.type === "File" ? node.bytes.length : 0),
      blksize: Option.none(),
      blocks: Option.none()
    }) as FileSystem.File.Info

  const requireDir = (method: string, path: string) => {
    const parent = nodes.get(parentOf(path))
    if (parent === undefined) return Effect.fail(sysError("ENOENT", method, path))
    if (parent.type !== "Directory") return Effect.fail(sysError("ENOTDIR", method, path))
    return Effect.void
  }

  const makeDirectory: FileSystem.FileSystem["makeDirectory"] = (raw, options) => {
    const path = normalise(raw)
    return gate("makeDirectory", path).pipe(
      Effect.andThen(
        Effect.suspend(() => {
          const existing = nodes.get(path)
          if (existing !== undefined) {
            return existing.type === "Directory" && options?.recursive === true
              ? Effect.void
              : Effect.fail(sysError("EEXIST", "makeDirectory", path))
          }
          return Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const missing: Array<string> = []
            let p = path
            while (!nodes.has(p)) {
              missing.push(p)
              p = parentOf(p)
            }
            if (nodes.get(p)!.type !== "Directory")
              return Effect.fail(sysError("ENOTDIR", "makeDirectory", path))
            if (missing.length > 1 && options?.recursive !== true)
              return Effect.fail(sysError("ENOENT", "makeDirectory", path))
            for (const m of missing.reverse())
              nodes.set(m, { type: "Directory", mode: options?.mode ?? 0o755, uid: 0, gid: 0, mtimeMs: now })
            return Effect.void
          })
        })
      )
    )
  }

  const open: FileSystem.FileSystem["open"] = (raw, options) => {
    const path = normalise(raw)
    const flag = options?.flag ?? "r"
    return gate("open", path).pipe(
      Effect.andThen(
        Effect.suspend(() => {
          const node = nodes.get(path)
          if (flag === "r") {
            if (node === undefined) return Effect.fail(sysError("ENOENT", "open", path))
          } else {
            if (node?.type === "Directory") return Effect.fail(sysError("EISDIR", "open", path))
            const parentOk = nodes.get(parentOf(path))
            if (parentOk === undefined) return Effect.fail(sysError("ENOENT", "open", path))
          }
          return Effect.flatMap(Clock.currentTimeMillis, (now) => {
            if (flag !== "r" && (node === undefined || flag.startsWith("w"))) {
              const prior = node?.type === "File" ? node : undefined
              nodes.set(path, {
                type: "File",
                bytes: new Uint8Array(0),
                mode: prior?.mode ?? options?.mode ?? 0o644,
                uid: prior?.uid ?? 0,
                gid: prior?.gid ?? 0,
                mtimeMs: now
              })
            }
            return Effect.succeed(fileHandle(path))
          })
        })
      )
    )
  }

  const fileHandle = (path: string): FileSystem.File => {
    const current = () => nodes.get(path)
    const writeAll = (buffer: Uint8Array) =>
      Effect.suspend(() => {
        const d = hook("write", path)
        const node = current()
        if (node === undefined || node.type !== "File") return Effect.fail(sysError("ENOENT", "write", path))
        if (d._tag === "Fail") return Effect.fail(sysError(d.code, "write", path))
        const keep = d._tag === "Crash" ? Math.floor(buffer.length * d.keep) : buffer.length
        const next = new Uint8Array(node.bytes.length + keep)
        next.set(node.bytes)
        next.set(buffer.subarray(0, keep), node.bytes.length)
        node.bytes = next
        if (d._tag === "Crash")
          return Effect.die(new ProcessCrash(`write ${path} (${keep} of ${buffer.length} bytes)`))
        return Effect.map(Clock.currentTimeMillis, (now) => {
          node.mtimeMs = now
        })
      })
    const handle = {
      [FileSystem.FileTypeId]: FileSystem.FileTypeId,
      fd: 3,
      stat: Effect.suspend(() => {
        const node = current()
        return node === undefined ? Effect.fail(sysError("ENOENT", "stat", path)) : Effect.succeed(info(node))
      }),
      seek: () => Effect.succeed(0n),
      sync: gate("sync", path),
      read: () => Effect.succeed(0),
      readAlloc: () => Effect.succeed(Option.none()),
      truncate: () => Effect.void,
      write: (buffer: Uint8Array) => Effect.as(writeAll(buffer), buffer.length),
      writeAll
    }
    return handle as unknown as FileSystem.File
  }

  const remove: FileSystem.FileSystem["remove"] = (raw, options) => {
    const path = normalise(raw)
    return gate("remove", path).pipe(
      Effect.andThen(
        Effect.suspend(() => {
          const node = nodes.get(path)
          if (node === undefined)
            return options?.force === true ? Effect.void : Effect.fail(sysError("ENOENT", "remove", path))
          const children = [...nodes.keys()].filter((k) => k.startsWith(`${path}/`))
          if (node.type === "Directory" && children.length > 0 && options?.recursive !== true)
            return Effect.fail(sysError("ENOTEMPTY", "remove", path))
          for (const c of children) nodes.delete(c)
          nodes.delete(path)
          return Effect.void
        })
      )
    )
  }

  const rename: FileSystem.FileSystem["rename"] = (rawFrom, rawTo) => {
    const from = normalise(rawFrom)
    const to = normalise(rawTo)
    return gate("rename", to).pipe(
      Effect.andThen(
        Effect.suspend(() => {
          const node = nodes.get(from)
          if (node === undefined) return Effect.fail(sysError("ENOENT", "rename", from))
          const target = nodes.get(to)
          if (target?.type === "Directory" && node.type === "File")
            return Effect.fail(sysError("EISDIR", "rename", to))
          return Effect.andThen(
            requireDir("rename", to),
            Effect.sync(() => {
              nodes.delete(from)
              nodes.set(to, node)
            })
          )
        })
      )
    )
  }

  const withNode = <A>(op: FsOp, raw: string, f: (node: Node, path: string) => A) => {
    const path = normalise(raw)
    return gate(op, path).pipe(
      Effect.andThen(
        Effect.suspend(() => {
          const node = nodes.get(path)
          return node === undefined
            ? Effect.fail(sysError("ENOENT", op, path))
            : Effect.succeed(f(node, path))
        })
      )
    )
  }

  return FileSystem.makeNoop({
    makeDirectory,
    open,
    remove,
    rename,
    chmod: (path, mode) =>
      withNode("chmod", path, (node) => {
        node.mode = mode & 0o7777
      }),
    chown: (path, uid, gid) =>
      withNode("chown", path, (node) => {
        node.uid = uid
        node.gid = gid
      }),
    exists: (raw) => {
      const path = normalise(raw)
      return gate("exists", path).pipe(Effect.map(() => nodes.has(path)))
    },
    stat: (path) => withNode("stat", path, info),
    readFile: (path) =>
      Effect.flatMap(
        withNode("readFile", path, (node) => node),
        (node) =>
          node.type === "File"
            ? Effect.succeed(node.bytes.slice())
            : Effect.fail(sysError("EISDIR", "readFile", path))
      ),
    readFileString: (path) =>
      Effect.flatMap(
        withNode("readFile", path, (node) => node),
        (node) =>
          node.type === "File"
            ? Effect.succeed(new TextDecoder().decode(node.bytes))
            : Effect.fail(sysError("EISDIR", "readFile", path))
      ),
    readDirectory: (raw) =>
      Effect.flatMap(
        withNode("readDirectory", raw, (node, path) => ({ node, path })),
        ({ node, path }) => {
          if (node.type !== "Directory") return Effect.fail(sysError("ENOTDIR", "readDirectory", path))
          const prefix = path === "/" ? "/" : `${path}/`
          return Effect.succeed(
            [...nodes.keys()]
              .filter((k) => k.startsWith(prefix) && k !== path && !k.slice(prefix.length).includes("/"))
              .map((k) => k.slice(prefix.length))
              .sort()
          )
        }
      )
  })
}

/** The bytes of a file on the disk, or undefined (for invariants, outside any hook). */
export const peekFile = (disk: Disk, path: string): FileNode | undefined => {
  const node = disk.nodes.get(normalise(path))
  return node?.type === "File" ? node : undefined
}
