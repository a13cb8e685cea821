#!/usr/bin/env bash
# Idempotent: installs buf (the npm package @bufbuild/buf, which ships the
# prebuilt binary) into /var/tmp/midplane-tools/buf, outside the clone, and
# links it as /var/tmp/midplane-tools/bin/buf. The midplane-proto contract
# tests run `buf lint` and `buf breaking` with it (see proto/buf.yaml).
set -euo pipefail

TOOLS="${MIDPLANE_TOOLS:-/var/tmp/midplane-tools}"
DIR="$TOOLS/buf"
VERSION=1.75.0

log() { echo "buf.sh: $*" >&2; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "node/npm missing; installing with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

installed() {
    [ -x "$TOOLS/bin/buf" ] && "$TOOLS/bin/buf" --version 2>/dev/null | grep -qx "$VERSION"
}

if installed; then
    log "buf $VERSION present in $TOOLS/bin"
    exit 0
fi

mkdir -p "$DIR" "$TOOLS/bin"
# Own package.json so npm never walks up into another tool's directory.
[ -f "$DIR/package.json" ] || echo '{ "name": "midplane-buf", "private": true }' > "$DIR/package.json"
(cd "$DIR" && npm install --silent --no-audit --no-fund "@bufbuild/buf@${VERSION}")
ln -sf "$DIR/node_modules/.bin/buf" "$TOOLS/bin/buf"
installed || { log "install into $DIR failed"; exit 1; }
log "installed buf $VERSION into $DIR"
