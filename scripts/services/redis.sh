#!/usr/bin/env bash
# Idempotent install of redis-server (7.x) for the agent and gateway tests.
# The tests start their own redis-server processes on free ports; this only
# makes sure the binary is there.
#   scripts/services/redis.sh        install if missing, print the version
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y --no-install-recommends redis-server
fi
version="$(redis-server --version)"
case "$version" in
  *v=7.*|*v=8.*) ;;
  *) echo "need redis-server 7 or newer (FAILOVER TO, atomic multi-parameter CONFIG SET); found: $version" >&2; exit 1 ;;
esac
echo "$version"
