/**
 * Where podman's API socket is: an explicit path wins; otherwise root uses the rootful socket and
 * any other user their own rootless one, when it exists. `undefined` means no socket: the caller
 * falls back to the podman CLI.
 */

export const rootfulSocket = "/run/podman/podman.sock"

export const rootlessSocket = (uid: number): string => `/run/user/${uid}/podman/podman.sock`

export const discoverSocket = (options: {
  /**
   * From `--socket` or `ARCHY_PODMAN_SOCKET` (a path or `unix://PATH`): used even when it does not
   * exist, so a wrong path is reported as unreachable instead of silently using the CLI.
   */
  readonly explicit?: string
  readonly uid: number
  readonly exists: (path: string) => boolean
}): string | undefined => {
  if (options.explicit !== undefined && options.explicit !== "") {
    return options.explicit.startsWith("unix://")
      ? options.explicit.slice("unix://".length)
      : options.explicit
  }
  const candidate = options.uid === 0 ? rootfulSocket : rootlessSocket(options.uid)
  return options.exists(candidate) ? candidate : undefined
}
