#!/usr/bin/env bash
# Installs umoci (Debian package), which scripts/images.sh builds the OCI images with and
# cli/tests/images.rs uses through it. skopeo (for oci-archive output) is optional and not
# installed here. Idempotent.
set -euo pipefail
if command -v umoci >/dev/null 2>&1; then
  echo "umoci present: $(umoci --version)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y umoci; then
  $SUDO apt-get update
  $SUDO apt-get install -y umoci
fi
umoci --version
