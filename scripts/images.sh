#!/usr/bin/env bash
# Builds Midplane's OCI images from binaries already built, with no container daemon and no
# network: umoci writes an OCI image layout per image (skopeo, when present, also writes an
# oci-archive you can `kind load image-archive`, `ctr images import` or `skopeo copy` to a
# registry).
#
#   cargo build --release --workspace --bins      # or reuse binaries you already have
#   scripts/images.sh                             # every image, from $CARGO_TARGET_DIR/release
#   scripts/images.sh --bin-dir DIR --out DIR --only midplane
#
# Images (names and tags match k8s/, charts/midplane and plugins/redis):
#   <registry>/app-svc, group-svc, plugin-svc, backup-svc, agent-gateway  (entrypoint: the service)
#   <registry>/agent     lifecycle-agent and adapter-agent; no entrypoint, the Pod's args name
#                        the binary (plugins/redis runs `lifecycle-agent` / `adapter-agent ...`)
#   <registry>/midplane  the CLI (the Backup Job runs `midplane backup create ...`)
# Each root filesystem: the binaries in /usr/local/bin, exactly the shared libraries `ldd`
# lists for them (glibc, libgcc_s, libm and the loader), the CA bundle, /etc/passwd and
# /etc/group with the user nonroot (65532), an empty /tmp. User 65532:65532, OCI labels
# org.opencontainers.image.{title,description,version,revision,source,licenses,created}.
#
# Layout: <out>/<name>/ is an OCI image layout with tag <tag>; <out>/<name>.tar the archive.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REGISTRY="ghcr.io/midplane"
TAG="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"
BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
OUT="$ROOT/target/images"
ONLY=""

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) BIN_DIR="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --tag) TAG="$2"; shift 2 ;;
    --registry) REGISTRY="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "images.sh: unknown argument $1" >&2; usage 2 ;;
  esac
done

log() { echo "images.sh: $*" >&2; }
command -v umoci >/dev/null || { log "umoci missing: apt-get install umoci (or scripts/services/umoci.sh)"; exit 1; }
command -v ldd >/dev/null || { log "ldd missing (libc-bin)"; exit 1; }

REVISION="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
# Reproducible timestamps when SOURCE_DATE_EPOCH is set (the commit time by default).
EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}"
CREATED="$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
CA_BUNDLE=""
for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  [ -f "$f" ] && { CA_BUNDLE="$f"; break; }
done

# image NAME DESCRIPTION ENTRYPOINT BINARY...
image() {
  local name="$1" desc="$2" entry="$3"; shift 3
  if [ -n "$ONLY" ] && [ "$ONLY" != "$name" ]; then return 0; fi
  local bin
  for bin in "$@"; do
    [ -x "$BIN_DIR/$bin" ] || { log "$BIN_DIR/$bin missing: build it first (cargo build --release -p ...)"; exit 1; }
  done
  local stage layout
  stage="$(mktemp -d)"
  chmod 0755 "$stage"
  trap 'rm -rf "$stage" "$stage.bundle"' RETURN
  mkdir -p "$stage/usr/local/bin" "$stage/etc/ssl/certs" "$stage/tmp"
  chmod 1777 "$stage/tmp"
  for bin in "$@"; do
    install -m 0755 "$BIN_DIR/$bin" "$stage/usr/local/bin/$bin"
    # The shared libraries and the loader, at the paths the binary asks for.
    ldd "$BIN_DIR/$bin" | awk '/=> \//{print $3} /^\s*\/[^ ]+ \(/{print $1}' | while read -r lib; do
      mkdir -p "$stage$(dirname "$lib")"
      cp -L "$lib" "$stage$lib"
    done
  done
  [ -n "$CA_BUNDLE" ] && cp -L "$CA_BUNDLE" "$stage/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$stage/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$stage/etc/group"

  layout="$OUT/$name"
  rm -rf "$layout" "$OUT/$name.tar"
  mkdir -p "$OUT"
  umoci init --layout "$layout"
  umoci new --image "$layout:$TAG"
  # unpack + repack (umoci 0.4's `insert` can write a truncated layer for large files).
  local rootless=()
  [ "$(id -u)" -ne 0 ] && rootless=(--rootless)
  umoci unpack "${rootless[@]}" --image "$layout:$TAG" "$stage.bundle" >/dev/null
  cp -a "$stage/." "$stage.bundle/rootfs/"
  chmod 0755 "$stage.bundle/rootfs"
  umoci repack "${rootless[@]}" --image "$layout:$TAG" "$stage.bundle"
  rm -rf "$stage.bundle"
  local args=(
    --config.user 65532:65532
    --config.workingdir /
    --config.env PATH=/usr/local/bin:/usr/bin:/bin
    --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
    --os linux --architecture amd64
    --author "Midplane" --created "$CREATED"
    --history.created "$CREATED" --history.created_by "scripts/images.sh"
    --config.label "org.opencontainers.image.title=$name"
    --config.label "org.opencontainers.image.description=$desc"
    --config.label "org.opencontainers.image.version=$TAG"
    --config.label "org.opencontainers.image.revision=$REVISION"
    --config.label "org.opencontainers.image.source=https://github.com/midplane/midplane"
    --config.label "org.opencontainers.image.licenses=Apache-2.0"
    --config.label "org.opencontainers.image.created=$CREATED"
    --config.label "org.opencontainers.image.ref.name=$REGISTRY/$name:$TAG"
  )
  if [ -n "$entry" ]; then
    args+=(--config.entrypoint "$entry")
  else
    args+=(--clear config.entrypoint)
  fi
  umoci config --image "$layout:$TAG" "${args[@]}"
  umoci gc --layout "$layout"
  if command -v skopeo >/dev/null; then
    skopeo copy --quiet "oci:$layout:$TAG" "oci-archive:$OUT/$name.tar:$REGISTRY/$name:$TAG"
  fi
  log "$REGISTRY/$name:$TAG -> $layout"
}

for svc in app-svc group-svc plugin-svc backup-svc agent-gateway; do
  image "$svc" "Midplane $svc" "/usr/local/bin/$svc" "$svc"
done
image agent "Midplane pod agents (lifecycle-agent, adapter-agent)" "" lifecycle-agent adapter-agent
image midplane "Midplane command line (backups, restores, render)" /usr/local/bin/midplane midplane
