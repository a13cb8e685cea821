#!/usr/bin/env bash
# Idempotent install (and optional start) of gcp-storage-emulator, a GCS JSON API emulator.
# Installed into a virtualenv under /var/tmp/midplane-tools so it survives fresh clones.
# The same venv carries `cryptography`, which the backup tests use to decrypt a backup with
# another language's standard crypto library, following docs/backup-format.md.
#   scripts/services/gcs-emulator.sh                 install only, print binary path
#   scripts/services/gcs-emulator.sh start PORT      install, then start in memory on 127.0.0.1:PORT
set -euo pipefail
TOOLS="${MIDPLANE_TOOLS:-/var/tmp/midplane-tools}"
VENV="$TOOLS/gcs-venv"
BIN="$VENV/bin/gcp-storage-emulator"
if [ ! -x "$BIN" ] || ! "$VENV/bin/python" -c "import cryptography" 2>/dev/null; then
  mkdir -p "$TOOLS"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet gcp-storage-emulator cryptography
fi
if [ "${1:-}" = "start" ]; then
  PORT="${2:?port}"
  nohup "$BIN" start --host=127.0.0.1 --port="$PORT" --in-memory >"/tmp/gcs-emulator-$PORT.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    if curl -s "http://127.0.0.1:$PORT/" | grep -q OK; then echo "gcp-storage-emulator listening on 127.0.0.1:$PORT (pid $PID)"; echo "$PID" > "${PIDFILE:-/tmp/gcp-storage-emulator-$PORT.pid}"; exit 0; fi
    sleep 0.1
  done
  echo "gcp-storage-emulator did not start on port $PORT" >&2; exit 1
fi
echo "$BIN"
