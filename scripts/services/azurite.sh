#!/usr/bin/env bash
# Idempotent install (and optional start) of Azurite, the Azure Blob Storage emulator.
#   scripts/services/azurite.sh                 install only, print azurite-blob path
#   scripts/services/azurite.sh start PORT DIR  install, then start the blob service on 127.0.0.1:PORT
set -euo pipefail
TOOLS="${MIDPLANE_TOOLS:-/var/tmp/midplane-tools}"
VERSION=3.35.0   # 3.37 needs Node 22; this machine has Node 20
BIN="$TOOLS/node_modules/.bin/azurite-blob"
if [ ! -x "$BIN" ] || ! grep -q "\"version\": \"$VERSION\"" "$TOOLS/node_modules/azurite/package.json" 2>/dev/null; then
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-audit --no-fund "azurite@$VERSION"
fi
if [ "${1:-}" = "start" ]; then
  PORT="${2:?port}"; DIR="${3:?dir}"
  mkdir -p "$DIR"
  nohup "$BIN" --blobHost 127.0.0.1 --blobPort "$PORT" --location "$DIR" --skipApiVersionCheck --loose \
    >"$DIR.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then echo "azurite listening on 127.0.0.1:$PORT (pid $PID)"; echo "$PID" > "${PIDFILE:-/tmp/azurite-$PORT.pid}"; exit 0; fi
    sleep 0.1
  done
  echo "azurite did not start on port $PORT (see $DIR.log)" >&2; exit 1
fi
echo "$BIN"
