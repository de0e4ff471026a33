/**
 * Entry paths inside a release, shared by the tree walk, the tarball checks and extraction: the
 * canonical form of a tar entry name, and where a symlink really points, followed through the
 * other symlinks of the same release as the kernel would.
 */

/** A tar entry name reduced to its components (`./bin/archy` -> `bin/archy`; the root is ""). */
export type Canonical =
  | { readonly _tag: "Path"; readonly path: string }
  | { readonly _tag: "Bad"; readonly check: "absolute-path" | "dotdot"; readonly message: string }

export const canonical = (name: string): Canonical => {
  if (name.startsWith("/"))
    return { _tag: "Bad", check: "absolute-path", message: "absolute path; entries must be relative" }
  const parts = name.split("/").filter((p) => p !== "" && p !== ".")
  if (parts.includes(".."))
    return { _tag: "Bad", check: "dotdot", message: "path contains '..'; entries must stay inside the tree" }
  return { _tag: "Path", path: parts.join("/") }
}

/** How a path is shown to people: `./` for the root, `./bin/archy` otherwise. */
export const display = (path: string): string => (path === "" ? "./" : `./${path}`)

export const parentOf = (path: string): string => {
  const i = path.lastIndexOf("/")
  return i === -1 ? "" : path.slice(0, i)
}

/** The proper ancestors of a path, nearest last: `a/b/c` -> ["a", "a/b"]. */
export const ancestorsOf = (path: string): Array<string> => {
  const parts = path.split("/")
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"))
}

/**
 * Why the symlink at `path` (pointing at `target`) leaves the tree, or `undefined` when it stays
 * inside. Each component is resolved in turn and every symlink met on the way (`links`: path ->
 * target, all of the release's symlinks) is followed, so `a -> ..`-style chains are caught, not
 * just the literal text of the target.
 */
export const linkEscape = (
  path: string,
  target: string,
  links: ReadonlyMap<string, string>
): string | undefined => {
  if (target === "") return "empty symlink target"
  if (target.startsWith("/")) return `absolute target ${target}; links must be relative`
  const stack = parentOf(path) === "" ? [] : parentOf(path).split("/")
  const queue = target.split("/")
  let hops = 0
  while (queue.length > 0) {
    const c = queue.shift()!
    if (c === "" || c === ".") continue
    if (c === "..") {
      if (stack.length === 0) return `target ${target} leaves the tree`
      stack.pop()
      continue
    }
    stack.push(c)
    const next = links.get(stack.join("/"))
    if (next !== undefined) {
      if (++hops > 40) return `target ${target} loops through symlinks`
      if (next.startsWith("/"))
        return `target ${target} leaves the tree through ${display(stack.join("/"))} -> ${next}`
      stack.pop()
      queue.unshift(...next.split("/"))
    }
  }
  return undefined
}
