#!/usr/bin/env bash
# scripts/test.sh — set up and run the whole suite on a fresh machine:
#   .venv + `pip install -e .[test,dev]` (when pyproject.toml changed), the real services
#   (scripts/services.sh: Docker engine, registry, containerd; stopped again on exit if this script
#   started them), then ruff, mypy and pytest. Arguments are passed on to pytest.
# AIRGAP_REQUIRE_SERVICES=1 (set by .ci/run): a service that cannot start is fatal, and so is
# a test that would have skipped for lack of one.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AIRGAP_REPO"
REQUIRE="${AIRGAP_REQUIRE_SERVICES:-0}"
SERVICES=(bash "$AIRGAP_REPO/scripts/services.sh")
STATE="${AIRGAP_SERVICES_DIR:-$AIRGAP_REPO/.services}"

ensure_venv test,dev
ensure_weights_package

# --- services: remember which were already running, stop on exit only those we started.
started=()
for svc in docker registry containerd tlsregistry; do
    "${SERVICES[@]}" status "$svc" >/dev/null 2>&1 || started+=("$svc")
done
# shellcheck disable=SC2317  # invoked by the EXIT trap
stop_started() {
    if ((${#started[@]})); then
        mkdir -p "$STATE"
        "${SERVICES[@]}" stop "${started[@]}" >"$STATE/test-stop.log" 2>&1 ||
            log "WARNING: stopping services failed, see $STATE/test-stop.log"
    fi
}
trap stop_started EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# use only the services started here
unset DOCKER_HOST AIRGAP_REGISTRY AIRGAP_CONTAINERD_ADDRESS CONTAINERS_CONF CONTAINERS_STORAGE_CONF \
    AIRGAP_TLS_REGISTRY AIRGAP_TLS_REGISTRY_CA AIRGAP_TLS_REGISTRY_USER AIRGAP_TLS_REGISTRY_PASSWORD_FILE
if "${SERVICES[@]}" start >/dev/null; then
    eval "$("${SERVICES[@]}" env)"
elif [[ "$REQUIRE" == 1 ]]; then
    die "services failed to start (AIRGAP_REQUIRE_SERVICES=1)"
else
    log "WARNING: services failed to start; tests that need them will be skipped"
fi
if [[ "$REQUIRE" == 1 ]] && [[ -z "${DOCKER_HOST:-}" || -z "${AIRGAP_REGISTRY:-}" ||
    -z "${AIRGAP_CONTAINERD_ADDRESS:-}" || -z "${AIRGAP_TLS_REGISTRY:-}" ]]; then
    "${SERVICES[@]}" status >&2 || true
    die "the Docker engine, both registries and containerd are required (AIRGAP_REQUIRE_SERVICES=1)"
fi
log "services: DOCKER_HOST=${DOCKER_HOST:-<none>} AIRGAP_REGISTRY=${AIRGAP_REGISTRY:-<none>}" \
    "AIRGAP_CONTAINERD_ADDRESS=${AIRGAP_CONTAINERD_ADDRESS:-<none>}"

# --- static checks (run all, fail at the end), then the tests.
failed=()
log "ruff check packager tests"
ruff check packager tests || failed+=(ruff)
log "mypy"
mypy || failed+=(mypy)

log "pytest $*"
rc=0
python -m pytest "$@" || rc=$?
if ((rc == 5)); then
    log "ERROR: pytest collected no tests"
    rc=1
fi
if ((${#failed[@]})); then
    log "ERROR: failed: ${failed[*]} (see above)"
    ((rc)) || rc=1
fi
exit "$rc"
