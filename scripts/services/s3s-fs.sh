#!/usr/bin/env bash
# Idempotent install (and optional start) of s3s-fs, an S3 server that checks SigV4.
# The binary is cached under /var/tmp/midplane-tools so CI reuses it across clones.
#   scripts/services/s3s-fs.sh                 install only, print binary path
#   scripts/services/s3s-fs.sh start PORT DIR  install, then start on 127.0.0.1:PORT serving DIR
#                                              (access key / secret from S3S_ACCESS_KEY / S3S_SECRET_KEY,
#                                              default midplane / midplane-secret)
set -euo pipefail
TOOLS="${MIDPLANE_TOOLS:-/var/tmp/midplane-tools}"
BIN="$TOOLS/bin/s3s-fs"
VERSION=0.14.1
if [ ! -x "$BIN" ] || ! "$BIN" --version 2>/dev/null | grep -q "$VERSION"; then
  mkdir -p "$TOOLS"
  # 0.17 needs a newer rustc than this machine's; 0.14.1 builds with 1.95.
  cargo install s3s-fs --version "$VERSION" --features binary --locked --root "$TOOLS"
fi
if [ "${1:-}" = "start" ]; then
  PORT="${2:?port}"; DIR="${3:?dir}"
  mkdir -p "$DIR"
  nohup "$BIN" --host 127.0.0.1 --port "$PORT" \
    --access-key "${S3S_ACCESS_KEY:-midplane}" --secret-key "${S3S_SECRET_KEY:-midplane-secret}" \
    "$DIR" >"$DIR.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then echo "s3s-fs listening on 127.0.0.1:$PORT (pid $PID)"; echo "$PID" > "${PIDFILE:-/tmp/s3s-fs-$PORT.pid}"; exit 0; fi
    sleep 0.1
  done
  echo "s3s-fs did not start on port $PORT (see $DIR.log)" >&2; exit 1
fi
echo "$BIN"
