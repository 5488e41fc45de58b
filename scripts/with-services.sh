#!/usr/bin/env bash
# Runs a command with the test services up, then stops the ones this call started (never a server
# that was already running), and exits with the command's status.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

started=$("$ROOT/scripts/services.sh" up) || { echo "with-services: could not start services" >&2; exit 1; }
# Stops only what this call started: `down` with no names would stop every server.
# shellcheck disable=SC2086 # started is a list of service names
trap '[ -z "$started" ] || "$ROOT/scripts/services.sh" down $started' EXIT
eval "$("$ROOT/scripts/services.sh" env)"
"$@"
