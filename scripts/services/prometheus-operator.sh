#!/usr/bin/env bash
# Idempotent: installs the Prometheus Operator's object schemas for the
# monitoring test, into /var/tmp/midplane-tools/prometheus-operator, outside the
# clone: the npm package @kubernetes-models/prometheus-operator (validators
# generated from the operator's CRDs: types, enums, required fields, patterns)
# and TypeScript, whose excess-property check rejects fields the CRDs do not
# define (what `kubernetes-validate --strict` does for core objects).
set -euo pipefail

TOOLS="${MIDPLANE_TOOLS:-/var/tmp/midplane-tools}"
DIR="$TOOLS/prometheus-operator"
MODELS=6.0.0
TYPESCRIPT=5.6.3

log() { echo "prometheus-operator.sh: $*" >&2; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "node/npm missing; installing with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

stamp="$DIR/.installed-$MODELS-$TYPESCRIPT"
if [ -f "$stamp" ]; then
    log "present in $DIR"
    exit 0
fi
mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || echo '{"name":"midplane-monitoring-schemas","private":true,"type":"module"}' > package.json
npm install --silent --no-audit --no-fund \
    "@kubernetes-models/prometheus-operator@$MODELS" "typescript@$TYPESCRIPT" >/dev/null
touch "$stamp"
log "installed in $DIR"
