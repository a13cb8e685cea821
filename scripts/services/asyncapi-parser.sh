#!/usr/bin/env bash
# Idempotent: installs the official AsyncAPI parser (@asyncapi/parser, Node) into
# /var/tmp/midplane-tools/asyncapi-parser, outside the clone (ajv comes with it). The midplane-bus catalogue test
# uses it to check docs/asyncapi.yaml the way an outside team's tooling would read it, and to
# validate every example against its JSON Schema.
set -euo pipefail

DIR="${MIDPLANE_ASYNCAPI_TOOLS:-/var/tmp/midplane-tools/asyncapi-parser}"
PARSER_VERSION=3.6.6

log() { echo "asyncapi-parser.sh: $*" >&2; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "node/npm missing; installing with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

installed() {
    [ -f "$DIR/node_modules/@asyncapi/parser/package.json" ] &&
        [ -f "$DIR/node_modules/ajv/package.json" ] &&
        grep -q "\"version\": \"${PARSER_VERSION}\"" "$DIR/node_modules/@asyncapi/parser/package.json"
}

if installed; then
    log "present in $DIR"
    exit 0
fi

mkdir -p "$DIR"
# Own package.json so npm never walks up into another tool's directory.
[ -f "$DIR/package.json" ] || echo '{ "name": "midplane-asyncapi-tools", "private": true }' > "$DIR/package.json"
# ajv and ajv-formats come with the parser (pinning them separately breaks spectral's ajv-errors).
(cd "$DIR" && npm install --silent --no-audit --no-fund "@asyncapi/parser@${PARSER_VERSION}")
installed || { log "install into $DIR failed"; exit 1; }
log "installed into $DIR"
