#!/usr/bin/env bash
# Builds the local images that the real-podman tests run, without any registry: a busybox root
# filesystem made from Debian's busybox-static, imported into podman's local store.
#
#   localhost/archy-test/busybox:1   /etc/archy-test-version contains "1"
#   localhost/archy-test/busybox:2   the same with "2", a different image id (for upgrade tests)
#
# Both run `/bin/sleep 3600` by default (a PID 1 that ignores SIGTERM, like the ones seen in the
# field: stop them with an explicit timeout). test/images/README.md describes them for test authors.
#
# Idempotent: an image that is already present, built by this same recipe, is not imported again.
# Each image carries the label archy-test.recipe (a hash of this script and the busybox version);
# an image with another recipe hash is replaced. Needs root (rootful podman, chroot) and busybox-static
# (scripts/install-podman.sh installs it). Usage: scripts/test-images.sh
set -euo pipefail

repo="localhost/archy-test/busybox"
versions=(1 2)
busybox=/bin/busybox

log() { printf '%s test-images: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
command -v podman >/dev/null || die "podman is not installed (run scripts/install-podman.sh)"
[ -x "$busybox" ] || die "$busybox is missing (apt-get install busybox-static)"
# sed reads all of busybox's usage text: `head -n 1` would exit early and, under pipefail, fail the
# script now and then with busybox's SIGPIPE (it writes its usage to stderr line by line).
busybox_version=$("$busybox" 2>&1 | sed -n '1s/^BusyBox \([^ ]*\).*/\1/p')
[ -n "$busybox_version" ] || die "cannot read the version of $busybox"
recipe=$({ cat "${BASH_SOURCE[0]}"; echo "$busybox_version"; } | sha256sum | cut -c1-16)

current() { # prints the recipe label of image $1, or nothing when the image is absent
  podman image exists "$1" || return 0
  podman image inspect --format '{{index .Labels "archy-test.recipe"}}' "$1"
}

todo=()
for v in "${versions[@]}"; do
  label=$(current "$repo:$v")
  if [ "$label" = "$recipe" ]; then
    log "$repo:$v already present ($(podman image inspect --format '{{.Id}}' "$repo:$v" | cut -c1-12))"
  else
    todo+=("$v")
  fi
done
[ "${#todo[@]}" -gt 0 ] || exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The root filesystem: busybox, a symlink per applet in /bin (sh, sleep, nc, cat, echo, ...), the
# directories programs expect, and passwd/group files for root and nobody.
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,dev,etc,proc,sys,root,var,run}
install -d -m 1777 "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
# Debian's busybox package (not -static) is dynamically linked and cannot run in an empty rootfs.
chroot "$rootfs" /bin/busybox true 2>/dev/null || die "$busybox does not run alone; install busybox-static"
# Inside the chroot /proc is not mounted, so busybox links to its argv[0]: /bin/busybox.
chroot "$rootfs" /bin/busybox --install -s /bin
for applet in sh sleep nc cat echo; do
  [ -L "$rootfs/bin/$applet" ] || die "busybox --install did not create /bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"

for v in "${todo[@]}"; do
  echo "$v" >"$rootfs/etc/archy-test-version"
  tar --create --file "$work/rootfs-$v.tar" --directory "$rootfs" \
    --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner .
  old=""
  if podman image exists "$repo:$v"; then old=$(podman image inspect --format '{{.Id}}' "$repo:$v"); fi
  id=$(podman import --quiet \
    --change 'CMD ["/bin/sleep","3600"]' \
    --change 'ENV PATH=/bin' \
    --change "LABEL archy-test.version=$v" \
    --change "LABEL archy-test.recipe=$recipe" \
    --message "archy test image $v (busybox $busybox_version)" \
    "$work/rootfs-$v.tar" "$repo:$v")
  # The tag moved to the new image; drop the old one unless a container still uses it.
  if [ -n "$old" ]; then podman rmi "$old" >/dev/null 2>&1 || true; fi
  log "built $repo:$v ($(cut -c1-12 <<<"${id#sha256:}"), busybox $busybox_version)"
done
