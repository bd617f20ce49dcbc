#!/bin/sh
# Installs the locked dependencies, builds the package and its tests, and runs the tests with
# node's test runner against the real server (TICKWIRE_SERVER_BIN, else the release build).
# ctest runs this as `clients.js`. Needs Node 18+ and npm (scripts/setup.sh), and the npm
# registry or npm's cache (`npm ci --prefer-offline` installs from the cache when it can).
set -eu
cd "$(dirname "$0")/.."

node -e 'const v = process.versions.node.split(".").map(Number);
  if (v[0] < 18) { console.error(`clients/js: Node ${process.version} is too old (18 or later)`); process.exit(1); }'

# --ignore-scripts: nothing to run at install (the build below is explicit).
npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error
npm run --silent clean # no output of a removed source file may linger
npm run --silent build
npm run --silent build:test
node --test build/test/*.test.js

# Node 20 has a global WebSocket behind a flag (Node 22+ has it always): run the WebSocket
# tests through it as well, so that both implementations the Node entry point may pick are
# tested.
if ! node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' &&
  node --experimental-websocket -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' 2>/dev/null; then
  echo "clients/js: the WebSocket tests again with Node's global WebSocket (--experimental-websocket)"
  node --experimental-websocket --test build/test/websocket.test.js
fi
