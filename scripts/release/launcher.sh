#!/bin/sh
# archy launcher, installed as <release>/bin/archy: runs this release's bundled daemon and CLI
# (lib/archy.mjs) with the node's Node.js 24. Works through any chain of links
# (/usr/local/bin/archy -> /opt/archipelago/current/bin/archy -> releases/<v>/bin/archy):
# ARCHY_HOME is the release the link chain ends in, whose apps/ is the catalog.
#
# Node is $ARCHY_NODE when set, else the first of /opt/archipelago/node/bin/node,
# /usr/local/bin/node, /usr/bin/node that exists.
set -eu
self=$(readlink -f "$0")
ARCHY_HOME=$(cd "$(dirname "$self")/.." && pwd)
export ARCHY_HOME
node=${ARCHY_NODE:-}
if [ -z "$node" ]; then
  for candidate in /opt/archipelago/node/bin/node /usr/local/bin/node /usr/bin/node; do
    if [ -x "$candidate" ]; then
      node=$candidate
      break
    fi
  done
fi
if [ -z "$node" ]; then
  echo "archy: no Node.js found (looked for /opt/archipelago/node/bin/node, /usr/local/bin/node, /usr/bin/node; set ARCHY_NODE)" >&2
  exit 127
fi
exec "$node" "$ARCHY_HOME/lib/archy.mjs" "$@"
