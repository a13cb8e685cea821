#!/usr/bin/env bash
# The whole test suite, services included: starts what the tests need, then
# runs every crate's tests against the real pieces.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-services.sh
export PATH="/var/tmp/midplane-tools/bin:$PATH"
exec cargo test --workspace --locked "$@"
