#!/usr/bin/env bash
# Installs what the tests need beyond podman (scripts/install-podman.sh), from Debian's archive:
#
#   docker-registry   the image registry test/registry/start runs on 127.0.0.1:5000 for pull tests
#   uidmap            newuidmap/newgidmap: rootless podman maps a user's subordinate uid/gid ranges
#   slirp4netns       rootless podman's network namespace (test/integration/rootless.integration.test.ts)
#   systemd           systemd-analyze, which verifies the daemon's unit inside the image overlay
#                     (test/image-recipe/overlay.test.ts); it works where systemd is not PID 1
#   nginx-light       the web UI in front of a release's web/ in the OTA suite (its own instance)
#   openssl           the OTA suite's self-signed certificate for that nginx
#
# Rootless networking also needs /dev/net/tun open to every user (0666): udev's default rules set
# that on a normal Debian; a machine without udev keeps the kernel's 0600, so it is set here.
#
# docker-registry and nginx-light ship init scripts and systemd units that would serve their default
# configs (every interface, ports 5000 and 80) as soon as they are installed. Tests run their own
# registry and nginx with their own configs, so the install is done with service starts refused
# (policy-rc.d exits 101, which both invoke-rc.d and deb-systemd-invoke honour) and the services are
# left stopped.
#
# Idempotent: packages are installed only when missing (one `apt-get update`, only then).
# Run as root. Usage: scripts/install-test-deps.sh
set -euo pipefail

packages=(docker-registry uidmap slirp4netns systemd nginx-light openssl)
policy=/usr/sbin/policy-rc.d

log() { printf '%s install-test-deps: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    made_policy=1
  fi
  rc=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
  if [ -n "$made_policy" ]; then rm -f "$policy"; fi
  [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc)"
else
  log "packages already installed: ${packages[*]}"
fi

[ -x /usr/bin/docker-registry ] || die "/usr/bin/docker-registry is missing after the install"
for b in /usr/sbin/nginx /usr/bin/openssl /usr/bin/newuidmap /usr/bin/newgidmap /usr/bin/slirp4netns \
  /usr/bin/systemd-analyze; do
  [ -x "$b" ] || die "$b is missing after the install"
done

tun=/dev/net/tun
if [ ! -c "$tun" ]; then
  log "creating $tun"
  mkdir -p /dev/net
  mknod -m 0666 "$tun" c 10 200
fi
if [ "$(stat -c %a "$tun")" != 666 ]; then
  log "making $tun usable by every user (mode 0666, as udev does)"
  chmod 0666 "$tun"
fi
log "$(/usr/bin/docker-registry --version 2>&1 | head -n 1)"
