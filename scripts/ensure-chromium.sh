#!/usr/bin/env bash
# Browser tests drive Debian's Chromium (never a downloaded browser). Install it when we can.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "chromium not found and cannot install it (not root or no apt-get): browser tests will be skipped" >&2
fi
