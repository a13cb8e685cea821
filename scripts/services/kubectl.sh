#!/usr/bin/env bash
# Install stock kubectl (Debian's kubernetes-client) for the kube-emulator's kubectl tests.
# Idempotent: does nothing when kubectl is already on PATH.
set -euo pipefail

if command -v kubectl >/dev/null 2>&1; then
  echo "kubectl present: $(kubectl version --client 2>/dev/null | head -1)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y kubernetes-client; then
  $SUDO apt-get update
  $SUDO apt-get install -y kubernetes-client
fi
kubectl version --client | head -1
