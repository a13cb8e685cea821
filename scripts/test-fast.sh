#!/usr/bin/env bash
# The fast tier: every crate's unit tests (src/), which need no service, no
# network and no tool beyond what the build has. Seconds once built. The full
# tier, services included, is scripts/test.sh.
#
# Where unshare(1) is allowed (root), the tests run in an empty network
# namespace, so a unit test that reached RabbitMQ, Redis or any other service
# fails here instead of passing by luck.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --lib --bins --locked --no-run --quiet
if unshare -n true 2>/dev/null; then
  exec unshare -n sh -c 'ip link set lo up 2>/dev/null || true; exec cargo test --workspace --lib --bins --locked --offline "$@"' sh "$@"
fi
exec cargo test --workspace --lib --bins --locked "$@"
