#!/usr/bin/env bash
# Opens every built page in headless Debian chromium (installed here when missing) and fails on
# JavaScript errors, missing images or error outputs. Screenshots go to _build/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || { echo "could not install chromium"; exit 1; }
fi
.venv/bin/python scripts/browser_check.py _build/html --screenshots _build/screenshots
