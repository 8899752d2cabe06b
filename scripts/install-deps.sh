#!/usr/bin/env bash
# Installs the Debian 12 packages tovd builds and tests against (idempotent; a no-op when present).
# Swift 6.x itself must already be on PATH.
set -euo pipefail
packages=(pkg-config libpq-dev libssl-dev liblz4-dev libopenblas-dev postgresql-15 postgresql-client-15 python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift is not on PATH: install Swift 6.x from swift.org" >&2; exit 1; }
