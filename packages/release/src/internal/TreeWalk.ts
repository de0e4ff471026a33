/**
 * Reads a directory tree with lstat (symlinks are never followed) in a fixed order: a directory,
 * then its children sorted by name, depth first. The order is the tarball's entry order, which
 * keeps builds reproducible.
 */
import * as fs from "node:fs/promises"
import { join } from "node:path"
import { io } from "./Io.ts"

export type Kind = "directory" | "file" | "symlink" | "fifo" | "socket" | "block-device" | "character-device"

export interface TreeEntry {
  /** Canonical path inside the tree ("" for the root). */
  readonly path: string
  readonly absolute: string
  readonly kind: Kind
  /** Permission bits as on disk. */
  readonly mode: number
  readonly size: number
  /** Symlink target, as written. */
  readonly target: string | undefined
}

const kindOf = (s: import("node:fs").Stats): Kind =>
  s.isDirectory()
    ? "directory"
    : s.isFile()
      ? "file"
      : s.isSymbolicLink()
        ? "symlink"
        : s.isFIFO()
          ? "fifo"
          : s.isSocket()
            ? "socket"
            : s.isBlockDevice()
              ? "block-device"
              : "character-device"

export const walkTree = (root: string) =>
  io("read the tree", root, async () => {
    const entries: Array<TreeEntry> = []
    const visit = async (path: string, absolute: string) => {
      const stat = await fs.lstat(absolute)
      const kind = kindOf(stat)
      const target = kind === "symlink" ? await fs.readlink(absolute) : undefined
      entries.push({ path, absolute, kind, mode: stat.mode & 0o7777, size: stat.size, target })
      if (kind !== "directory") return
      const names = (await fs.readdir(absolute)).sort()
      for (const name of names) await visit(path === "" ? name : `${path}/${name}`, join(absolute, name))
    }
    await visit("", root)
    return entries as ReadonlyArray<TreeEntry>
  })
