#!/usr/bin/env bash
# Idempotent install of promtool (Debian's prometheus package) and amtool
# (prometheus-alertmanager), used by the exporter test (`promtool check
# metrics`) and the monitoring tests (rules, rule unit tests, the Alertmanager
# example).
#   scripts/services/promtool.sh     install if missing, print the paths
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
install() {
  apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y --no-install-recommends "$@"; }
}
command -v promtool >/dev/null 2>&1 || install prometheus
command -v amtool >/dev/null 2>&1 || install prometheus-alertmanager
command -v promtool
command -v amtool
