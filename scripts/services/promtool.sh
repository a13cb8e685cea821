#!/usr/bin/env bash
# Idempotent install of promtool (from Debian's prometheus package), used by the
# exporter test (`promtool check metrics`) and to check alert rules.
#   scripts/services/promtool.sh     install if missing, print the path
set -euo pipefail
if ! command -v promtool >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y --no-install-recommends prometheus
fi
command -v promtool
