#!/usr/bin/env bash
# Installs kubernetes-validate (PyPI: real Kubernetes JSON schemas), used by the
# CLI tests to check `midplane render` output. Idempotent.
set -euo pipefail
if command -v kubernetes-validate >/dev/null 2>&1; then
  exit 0
fi
python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
command -v kubernetes-validate >/dev/null 2>&1 || {
  echo "kubernetes-validate installed but not on PATH (pip's bin dir: $(python3 -m site --user-base)/bin)" >&2
  exit 1
}
