#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium, installing Debian's `chromium` package
# when none is present (the QR login page test drives it). Progress goes to stderr.
set -euo pipefail

for candidate in "${CHROMIUM:-}" chromium chromium-browser; do
    if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null 2>&1; then
        command -v "$candidate"
        exit 0
    fi
done

echo "ensure-chromium: installing Debian's chromium package" >&2
if [[ "$(id -u)" -ne 0 ]]; then
    echo "ensure-chromium: not root; install chromium yourself or set CHROMIUM" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium >&2
command -v chromium
