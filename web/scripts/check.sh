#!/bin/sh
# Builds the chart page and tests it in headless Chromium against the real server
# (web/test/chart_page_test.py). ctest runs this as `clients.chart_page`; it exits 77 (a skip)
# when Chromium is not installed. Needs Node 18+ and npm (scripts/setup.sh), and the npm
# registry or npm's cache (`--prefer-offline` installs from the cache when it can).
set -eu
cd "$(dirname "$0")/.."

PYTHON="${TICKWIRE_PYTHON:-python3}"
"${PYTHON}" test/chart_page_test.py --probe || exit $?

# The page bundles the TypeScript client's browser build: install and build clients/js first
# (web/ links it as @tickwire/client), then the page's own locked packages.
# --ignore-scripts: nothing to run at install (the builds below are explicit).
(cd ../clients/js &&
  npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error &&
  npm run --silent build)
npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error
npm run --silent build
"${PYTHON}" test/chart_page_test.py
