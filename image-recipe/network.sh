#!/usr/bin/env bash
# Creates the node's podman network "archipelago" (bridge, 10.89.0.0/24, gateway 10.89.0.1) if it
# does not exist. The daemon ensures the same network at start-up; this script is the image's
# first-boot fallback, so a node that never got as far as the daemon still has it.
#
# The gateway is the host as seen from every container on this network: containers.conf maps
# host.containers.internal to it, and the orchestrator adds host.archipelago with the same address
# (field failure FM4). Idempotent. If a network of that name exists with another subnet or gateway,
# it is left alone (containers may be attached) and the script fails, saying so.
#
# Run as root. Usage: image-recipe/network.sh
set -euo pipefail

name=archipelago
subnet=10.89.0.0/24
gateway=10.89.0.1

[ "$(id -u)" -eq 0 ] || { echo "network.sh: must run as root" >&2; exit 1; }

if podman network exists "$name"; then
  have=$(podman network inspect --format '{{range .Subnets}}{{.Subnet}} {{.Gateway}};{{end}}' "$name")
  if [ "$have" != "$subnet $gateway;" ]; then
    echo "network.sh: podman network $name exists with subnet/gateway '$have'," \
      "expected '$subnet $gateway;'; remove it (podman network rm $name) once no container uses it" >&2
    exit 1
  fi
  echo "network.sh: podman network $name already exists ($subnet, gateway $gateway)"
  exit 0
fi

podman network create --driver bridge --subnet "$subnet" --gateway "$gateway" "$name" >/dev/null
echo "network.sh: created podman network $name ($subnet, gateway $gateway)"
