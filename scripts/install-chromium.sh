#!/usr/bin/env bash
# The console's browser tests drive Debian's chromium headless (playwright-core brings no browser).
# Installs it with apt-get when missing (CI runs as root); CHROMIUM_PATH names another binary.
set -euo pipefail
if [ -n "${CHROMIUM_PATH:-}" ] && [ -x "$CHROMIUM_PATH" ]; then exit 0; fi
if command -v chromium >/dev/null; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "install-chromium: chromium is missing; install it (sudo apt-get install chromium) or set CHROMIUM_PATH" >&2
  exit 1
fi
echo "install-chromium: installing Debian's chromium (apt-get)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null
