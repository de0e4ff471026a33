#!/usr/bin/env bash
# Installs rootful podman from Debian's archive and the node's podman settings, as on an
# Archipelago node. Idempotent: packages are installed only when missing (one `apt-get update`,
# only then), and the settings file is rewritten only when its bytes differ.
#
# The settings come from image-recipe/containers.conf (the node's real file). They are installed as
# a drop-in, /etc/containers/containers.conf.d/50-archipelago.conf, so an existing
# /etc/containers/containers.conf is left as it is; drop-ins override it key by key.
#
# Run as root. Usage: scripts/install-podman.sh
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
conf_src="$root/image-recipe/containers.conf"
conf_dir=/etc/containers/containers.conf.d
conf_dst="$conf_dir/50-archipelago.conf"

# Rootful podman needs only these. uidmap, slirp4netns and fuse-overlayfs serve rootless podman,
# which the node does not use. busybox-static is what scripts/test-images.sh builds images from;
# catatonit is podman's `--init` process.
packages=(podman runc catatonit busybox-static)

log() { printf '%s install-podman: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
[ -f "$conf_src" ] || die "missing $conf_src"

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "packages already installed: ${packages[*]}"
fi

mkdir -p "$conf_dir"
if cmp -s "$conf_src" "$conf_dst"; then
  log "$conf_dst is up to date"
else
  tmp=$(mktemp "$conf_dir/.50-archipelago.conf.XXXXXX")
  cp "$conf_src" "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$conf_dst"
  log "wrote $conf_dst"
fi

# Prove podman reads the drop-in (a CONTAINERS_CONF variable, for one, makes podman skip it) and
# runs with its runtime: with crun installed too, Debian's podman would pick crun.
debug=$(podman --log-level=debug info 2>&1 >/dev/null) || die "podman info failed: $debug"
[[ $debug == *'Merged system config \"'"$conf_dst"'\"'* ]] || die "podman does not read $conf_dst"
runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}') || die "podman info failed"
[ "$runtime" = runc ] || die "podman uses OCI runtime '$runtime', expected runc from $conf_dst"
log "$(podman --version); runtime $runtime; cgroups $(podman info --format '{{.Host.CgroupsVersion}}')"
