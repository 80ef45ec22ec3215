#!/usr/bin/env bash
# Opens every built page in headless Debian chromium (installed here when missing) and fails on
# JavaScript errors, missing images, error outputs, any request that leaves the local server
# (aborted, so nothing is fetched), and text a reader should not see once MathJax has run: raw
# Markdown tables, raw TeX, progress bars at 0 %, unrendered roles, /tmp/ paths
# (scripts/browser_check.py). Full-page screenshots go to _build/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || { echo "could not install chromium"; exit 1; }
fi
[ "${1:-}" = "--install-only" ] && exit 0   # CI installs chromium before the tests (a live-browser test)
.venv/bin/python scripts/browser_check.py _build/html --chromium "$(command -v chromium)" \
  --screenshots _build/screenshots "$@"
