#!/usr/bin/env bash
# scripts/serving/build-image.sh — build the reference server's image (minilm_server.py on Debian
# bookworm's python3 and numpy) as an OCI image layout, and print the layout's path.
#
#   scripts/serving/build-image.sh [--force] [--link PATH]
#
# mmdebstrap --variant=apt --include=python3-minimal,python3-numpy bookworm makes the root file
# system (documentation, man pages, locales and apt's lists left out), the server goes to
# /opt/airgap/minilm_server.py, and make_oci.py turns that root tar into a one-layer OCI layout with
# ENTRYPOINT python3 /opt/airgap/minilm_server.py, port 8000. SOURCE_DATE_EPOCH is fixed, so the
# same Debian packages give the same bytes (the same image digest).
#
# Cached: $AIRGAP_CACHE_DIR/serving (default ~/.cache/airgap/serving)/minilm-server-KEY, KEY from
# this script, make_oci.py, minilm_server.py and the package list; a second run prints the cached
# layout at once. --force builds again. --link PATH also makes PATH a symlink to the layout (the
# demo manifest reads manifests/examples/images/minilm-server). Needs root (mmdebstrap, apt) and
# Debian's package mirror on the first run; installs mmdebstrap with apt-get when it is missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITE=bookworm
PACKAGES=python3-minimal,python3-numpy
REF=airgap.local/minilm-server:1
PLATFORM=linux/amd64
export SOURCE_DATE_EPOCH=1700000000

log() { printf '[build-image] %s\n' "$*" >&2; }
die() { printf '[build-image] ERROR: %s\n' "$*" >&2; exit 1; }

force=0
link=""
while (($#)); do
    case "$1" in
        --force) force=1 ;;
        --link) link="${2:?--link needs a path}"; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done

case "$(uname -m)" in
    x86_64) PLATFORM=linux/amd64; ARCH=amd64 ;;
    aarch64) PLATFORM=linux/arm64; ARCH=arm64 ;;
    *) die "unsupported machine $(uname -m)" ;;
esac

key="$(cat "$HERE/build-image.sh" "$HERE/make_oci.py" "$HERE/minilm_server.py" |
    { sha256sum; echo "$SUITE $PACKAGES $ARCH"; } | sha256sum | cut -c1-16)"
CACHE="${AIRGAP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/airgap}/serving"
OUT="$CACHE/minilm-server-$key"

if ((force)) && [[ -e "$OUT" ]]; then
    rm -rf "$OUT"
fi
if [[ -f "$OUT/index.json" ]]; then
    log "cached: $OUT"
else
    if ! command -v mmdebstrap >/dev/null 2>&1; then
        [[ "$(id -u)" == 0 ]] || die "mmdebstrap is missing (apt-get install mmdebstrap, as root)"
        log "installing mmdebstrap (apt-get)"
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                mmdebstrap; } >&2 || die "apt-get install mmdebstrap failed"
    fi
    mkdir -p "$CACHE"
    work="$(mktemp -d "$CACHE/.build.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    log "mmdebstrap --variant=apt --include=$PACKAGES $SUITE (about a minute)"
    start=$(date +%s)
    mmdebstrap --quiet --variant=apt --arch="$ARCH" --include="$PACKAGES" \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --customize-hook='mkdir -p "$1/opt/airgap"' \
        --customize-hook="copy-in $HERE/minilm_server.py /opt/airgap" \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*' \
        "$SUITE" "$work/root.tar" >&2
    log "root file system: $(du -m "$work/root.tar" | cut -f1) MB in $(($(date +%s) - start)) s"
    digest="$(python3 "$HERE/make_oci.py" "$work/root.tar" "$OUT" "$REF" "$PLATFORM" \
        'entrypoint=["python3", "-u", "/opt/airgap/minilm_server.py"]' \
        port=8000 env=PYTHONDONTWRITEBYTECODE=1)"
    log "image $REF: manifest $digest"
fi
if [[ -n "$link" ]]; then
    mkdir -p "$(dirname "$link")"
    ln -sfn "$OUT" "$link"
fi
echo "$OUT"
