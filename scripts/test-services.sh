#!/usr/bin/env bash
# Installs and starts everything the test suite talks to, idempotently:
# RabbitMQ and Redis (preinstalled on this machine kind, started if down),
# and the tools tests spawn themselves (s3s-fs, Azurite, the GCS emulator,
# gpg, promtool, kubectl, kubernetes-validate). Slow builds are cached under
# /var/tmp/midplane-tools so a fresh clone reuses them.
set -euo pipefail
cd "$(dirname "$0")/.."
export MIDPLANE_TOOLS="${MIDPLANE_TOOLS:-/var/tmp/midplane-tools}"
mkdir -p "$MIDPLANE_TOOLS"

apt_updated=""
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1; then
    [ -n "$apt_updated" ] || { apt-get update >/dev/null; apt_updated=1; }
    apt-get install -y --no-install-recommends "$@" >/dev/null
  fi
}

command -v redis-server >/dev/null || apt_install redis-server
command -v gpg >/dev/null || apt_install gnupg
command -v curl >/dev/null || apt_install curl
if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

for script in scripts/services/*.sh; do
  echo "== $script"
  bash "$script"
done
