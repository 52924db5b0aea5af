#!/usr/bin/env bash
# scripts/services.sh — start/stop the real services that the tests and the demo use:
#   * a private Docker engine: dockerd --storage-driver vfs --iptables=false --bridge=none
#     on its own unix socket, with its data under the state dir (no iptables, no bridges,
#     no ip forwarding; containers are meant to run with --network none);
#   * a distribution registry 2.x (Debian docker-registry) on 127.0.0.1:<free port>;
#   * a containerd of its own (Debian containerd; no CRI plugin) on its own socket, with its root
#     and state folders under the state dir (`airgap install --containerd` imports into it; tests
#     unpack and run with the native snapshotter, which works in any container);
#   * a private Podman store: Podman is daemonless, so this is only its configuration (vfs
#     storage under the state dir, runc where installed, the ulimits a sandbox allows);
#   * "tlsregistry": a second registry as sites have it, with TLS from a private CA (made here
#     with openssl) and htpasswd logins (htpasswd -B, Debian apache2-utils), on its own port:
#     env.sh exports AIRGAP_TLS_REGISTRY, AIRGAP_TLS_REGISTRY_CA, AIRGAP_TLS_REGISTRY_USER and
#     AIRGAP_TLS_REGISTRY_PASSWORD_FILE (a test password, mode 0600).
#
# Usage: scripts/services.sh start [SERVICE...] start what is not running, write and print env.sh
#        scripts/services.sh stop [SERVICE...]   stop (all by default); idempotent
#        scripts/services.sh status [SERVICE...] print state; exit 0 only if all named run
#        scripts/services.sh env                 print env.sh (DOCKER_HOST, AIRGAP_REGISTRY,
#                                                AIRGAP_CONTAINERD_ADDRESS, the private Podman's
#                                                CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, and
#                                                the TLS registry's AIRGAP_TLS_REGISTRY*)
# SERVICE: docker, registry, containerd, tlsregistry.
#
# State dir: $AIRGAP_SERVICES_DIR, default <repo>/.services. Because unix socket paths are
# limited to 107 bytes, the docker socket and dockerd's exec-root (which holds containerd's
# sockets) live in a short mktemp dir under /tmp, recorded in <state>/docker/rundir.
# Missing binaries are installed with apt-get when running as root.
# If dockerd cannot run here, `start` warns, records why in <state>/docker.unavailable,
# and carries on with the registry only (env.sh then sets no DOCKER_HOST).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${AIRGAP_SERVICES_DIR:-$REPO/.services}"
TIMEOUT="${AIRGAP_SERVICES_TIMEOUT:-60}"   # seconds to wait for each service to answer
DDIR="$STATE/docker"
RDIR="$STATE/registry"
CDIR="$STATE/containerd"
PDIR="$STATE/podman"
TDIR="$STATE/tlsregistry"
ENV_FILE="$STATE/env.sh"
UNAVAILABLE="$STATE/docker.unavailable"

log() { printf '[services] %s\n' "$*" >&2; }
now_ms() { date +%s%3N; }
since() { local ms=$(($(now_ms) - $1)); printf '%d.%03ds' $((ms / 1000)) $((ms % 1000)); }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------- installs

busybox_static_installed() {
    if command -v dpkg-query >/dev/null 2>&1; then
        dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'
    else
        [[ -x /bin/busybox ]]
    fi
}

# Install the Debian packages whose binaries are missing (apt-get update once first).
ensure_packages() {
    local -a want=()
    command -v dockerd >/dev/null 2>&1 || want+=(docker.io)
    [[ -x /usr/bin/docker-registry ]] || want+=(docker-registry)
    command -v skopeo >/dev/null 2>&1 || want+=(skopeo)
    command -v curl >/dev/null 2>&1 || want+=(curl)
    # the TLS registry with logins: its CA and certificate (openssl), its htpasswd file
    command -v openssl >/dev/null 2>&1 || want+=(openssl)
    command -v htpasswd >/dev/null 2>&1 || want+=(apache2-utils)
    busybox_static_installed || want+=(busybox-static)
    # independent tools the tests compare against: zstd (kernel decompression), setpriv (util-linux)
    command -v zstd >/dev/null 2>&1 || want+=(zstd)
    command -v setpriv >/dev/null 2>&1 || want+=(util-linux)
    # the serving check: Podman (and catatonit, the pause process of `podman kube play`) runs the
    # reference server and the rendered Deployment; mmdebstrap builds the server's image
    command -v podman >/dev/null 2>&1 || want+=(podman)
    # `airgap install --containerd` (ctr comes with containerd); runc runs the containers of both
    command -v containerd >/dev/null 2>&1 || want+=(containerd)
    command -v runc >/dev/null 2>&1 || want+=(runc)
    [[ -x /usr/bin/catatonit || -x /usr/libexec/podman/catatonit ]] || want+=(catatonit)
    command -v mmdebstrap >/dev/null 2>&1 || want+=(mmdebstrap)
    # the site kit on arm64 (tests/e2e/test_site_kit.py): an arm64 Debian root run through qemu
    if [[ "$(uname -m)" != aarch64 ]]; then
        [[ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P || -x /usr/bin/qemu-aarch64-static ]] ||
            want+=(qemu-user-static)
        command -v update-binfmts >/dev/null 2>&1 || want+=(binfmt-support)
        # mmdebstrap only recommends it (and apt-get runs with --no-install-recommends), but a
        # foreign --arch refuses to start without it
        command -v arch-test >/dev/null 2>&1 || want+=(arch-test)
    fi
    # signatures the field checks: SoftHSM2 (a PKCS#11 token for --key pkcs11:...) and headless
    # Chromium (renders `audit --html` reports as a person sees them; fonts for its screenshots)
    command -v softhsm2-util >/dev/null 2>&1 || want+=(softhsm2)
    command -v chromium >/dev/null 2>&1 || want+=(chromium fonts-liberation)
    ((${#want[@]})) || return 0
    [[ "$(id -u)" == 0 ]] || die "missing packages: ${want[*]} (run as root, or install them)"
    command -v apt-get >/dev/null 2>&1 || die "missing packages: ${want[*]} and no apt-get"
    log "installing ${want[*]} (apt-get)"
    # Keep the packages' init scripts from starting a system dockerd/registry while installing.
    local made_policy=0 rc=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${want[@]}"
    } >"$STATE/apt.log" 2>&1 || rc=$?
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
    if ((rc)); then
        tail -n 20 "$STATE/apt.log" >&2
        die "apt-get install ${want[*]} failed (log: $STATE/apt.log)"
    fi
}

# The kernel runs arm64 programs through qemu (the site kit's arm64 root): binfmt_misc mounted
# and the qemu-aarch64 handler enabled. A warning only: the test that needs it says why.
ensure_binfmt() {
    [[ "$(uname -m)" != aarch64 && "$(id -u)" == 0 ]] || return 0
    [[ -f /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] && grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 && return 0
    mountpoint -q /proc/sys/fs/binfmt_misc ||
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 ||
        log "WARNING: could not enable the qemu-aarch64 binfmt handler (arm64 site-kit test)"
}

# ---------------------------------------------------------------------------- processes

# proc_live PID COMM: process PID exists, is not a zombie, and its comm is COMM.
proc_live() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    [[ "$stat" == "$1 ($2) "* && "${stat##*) }" != Z* ]]
}

# pid_alive PIDFILE NAME: the pid in PIDFILE is alive and its argv[0] ends in NAME.
pid_alive() {
    local pid argv0
    [[ -s "$1" ]] || return 1
    pid="$(<"$1")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    # A zombie's cmdline is empty, so it does not count as alive.
    { IFS= read -r -d '' argv0 <"/proc/$pid/cmdline"; } 2>/dev/null || return 1
    [[ "${argv0##*/}" == "$2" ]]
}

# spawn PIDFILE LOG CMD...: run CMD detached (own session, no stdin), pid into PIDFILE.
spawn() {
    local pidfile="$1" logfile="$2"
    shift 2
    rm -f "$pidfile"
    # shellcheck disable=SC2016  # $$ and $@ are expanded by the inner bash
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 9>&- &
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s "$pidfile" ]] && return 0
        sleep 0.1
    done
    die "could not start $1 (no pid written to $pidfile)"
}

# stop_pid PIDFILE NAME GRACE: SIGTERM, wait GRACE seconds, then SIGKILL.
stop_pid() {
    local pidfile="$1" name="$2" grace="$3" pid i
    if pid_alive "$pidfile" "$name"; then
        pid="$(<"$pidfile")"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < grace * 10; i++)); do
            pid_alive "$pidfile" "$name" || break
            sleep 0.1
        done
        if pid_alive "$pidfile" "$name"; then
            log "$name (pid $pid) did not stop in ${grace}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
        log "stopped $name (pid $pid)"
    fi
    rm -f "$pidfile"
}

free_port() {   # free_port [PREFERRED]: PREFERRED if it is free on 127.0.0.1, else any free one
    python3 - "${1:-0}" <<'PY'
import socket
import sys

preferred = int(sys.argv[1])
for port in ([preferred] if preferred else []) + [0]:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the registry (Go) does
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(s.getsockname()[1])
        break
PY
}

# ---------------------------------------------------------------------------- docker

docker_sock() { [[ -s "$DDIR/rundir" ]] && printf '%s/docker.sock' "$(<"$DDIR/rundir")"; }

docker_answers() {
    local sock
    sock="$(docker_sock)" || return 1
    [[ -S "$sock" ]] || return 1
    [[ "$(curl -s --max-time 3 --unix-socket "$sock" http://localhost/_ping 2>/dev/null)" == OK ]]
}

docker_running() { pid_alive "$DDIR/dockerd.pid" dockerd && docker_answers; }

# cleanup_rundir DIR: remove the short run dir that DIR/rundir names, unmounting anything the
# daemon left there (dockerd's netns bind mounts, containerd's task rootfs).
cleanup_rundir() {
    local run mnt
    [[ -s "$1/rundir" ]] || return 0
    run="$(<"$1/rundir")"
    if [[ "$run" == /tmp/airgap-* && -d "$run" ]]; then
        awk -v r="$run/" 'index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r |
            while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
        rm -rf "$run"
    fi
    rm -f "$1/rundir"
}

docker_cleanup_rundir() { cleanup_rundir "$DDIR"; }

# After a crash of dockerd, the containerd shims of its containers (and the containers'
# processes) live on: kill those that belong to our containerd (by its socket address).
docker_kill_orphan_shims() {
    local address="$1" dir pid child argv
    for dir in /proc/[0-9]*; do
        pid="${dir#/proc/}"
        argv="$({ tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null)" || continue
        [[ "$argv" == *containerd-shim*" -address $address"* ]] || continue
        while read -r child; do
            log "killing orphan container process $child (of shim $pid)"
            kill -KILL "$child" 2>/dev/null || true
        done < <(ps -o pid= --ppid "$pid" 2>/dev/null || true)
        log "killing orphan containerd-shim (pid $pid)"
        kill -KILL "$pid" 2>/dev/null || true
    done
}

docker_stop() {
    # The containerd that dockerd supervises normally exits with it; kill it if it did not.
    local cpid="" run=""
    [[ -s "$DDIR/rundir" ]] && run="$(<"$DDIR/rundir")"
    if [[ -n "$run" && -s "$run/exec/containerd/containerd.pid" ]]; then
        cpid="$(<"$run/exec/containerd/containerd.pid")"
    fi
    stop_pid "$DDIR/dockerd.pid" dockerd 30
    if [[ "$cpid" =~ ^[0-9]+$ ]]; then
        local i
        for ((i = 0; i < 50; i++)); do
            proc_live "$cpid" containerd || break
            sleep 0.1
        done
        if proc_live "$cpid" containerd; then
            log "killing leftover containerd (pid $cpid)"
            kill -KILL "$cpid" 2>/dev/null || true
        fi
    fi
    [[ -n "$run" ]] && docker_kill_orphan_shims "$run/exec/containerd/containerd.sock"
    docker_cleanup_rundir
}

docker_start() {
    rm -f "$UNAVAILABLE"
    if docker_running; then
        log "dockerd already running (pid $(<"$DDIR/dockerd.pid"), $(docker_sock))"
        return 0
    fi
    docker_stop   # a half-dead previous instance: clean it up first
    mkdir -p "$DDIR/data"
    local run
    run="$(mktemp -d /tmp/airgap-XXXXXX)"
    echo "$run" >"$DDIR/rundir"
    # Our own config file, so that a system /etc/docker/daemon.json cannot change anything.
    echo '{}' >"$DDIR/daemon.json"
    : >"$DDIR/dockerd.log"
    log "starting dockerd (socket $run/docker.sock, data $DDIR/data)"
    local t0 start_ms
    t0=$SECONDS start_ms=$(now_ms)
    spawn "$DDIR/dockerd.pid" "$DDIR/dockerd.log" \
        dockerd \
        --host "unix://$run/docker.sock" \
        --data-root "$DDIR/data" \
        --exec-root "$run/exec" \
        --pidfile "$run/dockerd.pid" \
        --config-file "$DDIR/daemon.json" \
        --storage-driver vfs \
        --iptables=false --ip-masq=false --ip-forward=false --bridge=none \
        --userland-proxy=false \
        --containerd-namespace airgap --containerd-plugins-namespace airgap-plugins
    while ((SECONDS - t0 < TIMEOUT)); do
        if docker_answers; then
            log "dockerd ready after $(since "$start_ms") (pid $(<"$DDIR/dockerd.pid"))"
            return 0
        fi
        pid_alive "$DDIR/dockerd.pid" dockerd || break
        sleep 0.2
    done
    local why
    if pid_alive "$DDIR/dockerd.pid" dockerd; then
        why="dockerd did not answer on $run/docker.sock within ${TIMEOUT}s"
    else
        why="dockerd exited: $(grep -m 1 -E 'level=(fatal|error)|failed to start' "$DDIR/dockerd.log" |
            sed -E 's/^time="[^"]*" //' || true)"
        [[ "$why" == "dockerd exited: " ]] && why="dockerd exited (see $DDIR/dockerd.log)"
    fi
    {
        echo "[services] WARNING: the Docker engine cannot run here: $why"
        echo "[services] --- last lines of $DDIR/dockerd.log:"
        tail -n 25 "$DDIR/dockerd.log"
        echo "[services] --- continuing with the registry only (DOCKER_HOST will not be set)"
    } >&2
    docker_stop
    echo "$why" >"$UNAVAILABLE"
    return 1
}

# ---------------------------------------------------------------------------- registry

registry_port() { [[ -s "$RDIR/port" ]] && cat "$RDIR/port"; }

registry_answers() {
    local port
    port="$(registry_port)" || return 1
    curl -sf --max-time 3 -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null
}

registry_running() { pid_alive "$RDIR/registry.pid" docker-registry && registry_answers; }

registry_stop() { stop_pid "$RDIR/registry.pid" docker-registry 10; }

registry_start() {
    if registry_running; then
        log "registry already running (pid $(<"$RDIR/registry.pid"), 127.0.0.1:$(registry_port))"
        return 0
    fi
    registry_stop
    mkdir -p "$RDIR/data"
    local port
    port="$(free_port "$(registry_port || echo 0)")"
    echo "$port" >"$RDIR/port"
    cat >"$RDIR/config.yml" <<EOF
# Written by scripts/services.sh; distribution registry 2.x on loopback only.
version: 0.1
log:
  level: info
  fields:
    service: airgap-test-registry
storage:
  filesystem:
    rootdirectory: "$RDIR/data"
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
    : >"$RDIR/registry.log"
    log "starting docker-registry on 127.0.0.1:$port (data $RDIR/data)"
    local t0 start_ms
    t0=$SECONDS start_ms=$(now_ms)
    spawn "$RDIR/registry.pid" "$RDIR/registry.log" /usr/bin/docker-registry serve "$RDIR/config.yml"
    while ((SECONDS - t0 < TIMEOUT)); do
        if registry_answers; then
            log "registry ready after $(since "$start_ms") (pid $(<"$RDIR/registry.pid"))"
            return 0
        fi
        pid_alive "$RDIR/registry.pid" docker-registry || break
        sleep 0.2
    done
    tail -n 25 "$RDIR/registry.log" >&2
    registry_stop
    die "docker-registry did not answer GET http://127.0.0.1:$port/v2/ within ${TIMEOUT}s"
}

# ---------------------------------------------------------------------------- containerd

containerd_sock() { [[ -s "$CDIR/rundir" ]] && printf '%s/containerd.sock' "$(<"$CDIR/rundir")"; }

containerd_answers() {
    local sock
    sock="$(containerd_sock)" || return 1
    [[ -S "$sock" ]] || return 1
    timeout 10 ctr --address "$sock" version >/dev/null 2>&1
}

containerd_running() { pid_alive "$CDIR/containerd.pid" containerd && containerd_answers; }

containerd_stop() {
    local run=""
    [[ -s "$CDIR/rundir" ]] && run="$(<"$CDIR/rundir")"
    stop_pid "$CDIR/containerd.pid" containerd 20
    [[ -n "$run" ]] && docker_kill_orphan_shims "$run/containerd.sock"
    cleanup_rundir "$CDIR"
}

containerd_start() {
    if containerd_running; then
        log "containerd already running (pid $(<"$CDIR/containerd.pid"), $(containerd_sock))"
        return 0
    fi
    containerd_stop
    mkdir -p "$CDIR/root"
    local run
    run="$(mktemp -d /tmp/airgap-XXXXXX)"
    echo "$run" >"$CDIR/rundir"
    # its own config: no CRI plugin, nothing under /var/lib or /run, sockets in the short run dir
    cat >"$CDIR/config.toml" <<EOF
# Written by scripts/services.sh: a private containerd for the tests.
version = 2
root = "$CDIR/root"
state = "$run/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$run/containerd.sock"
[ttrpc]
  address = "$run/containerd.sock.ttrpc"
[debug]
  address = ""
EOF
    : >"$CDIR/containerd.log"
    log "starting containerd (socket $run/containerd.sock, root $CDIR/root)"
    local t0 start_ms
    t0=$SECONDS start_ms=$(now_ms)
    spawn "$CDIR/containerd.pid" "$CDIR/containerd.log" containerd --config "$CDIR/config.toml"
    while ((SECONDS - t0 < TIMEOUT)); do
        if containerd_answers; then
            log "containerd ready after $(since "$start_ms") (pid $(<"$CDIR/containerd.pid"))"
            return 0
        fi
        pid_alive "$CDIR/containerd.pid" containerd || break
        sleep 0.2
    done
    {
        echo "[services] WARNING: containerd did not answer on $run/containerd.sock within ${TIMEOUT}s"
        echo "[services] --- last lines of $CDIR/containerd.log:"
        tail -n 25 "$CDIR/containerd.log"
        echo "[services] --- continuing without it (AIRGAP_CONTAINERD_ADDRESS will not be set)"
    } >&2
    containerd_stop
    return 1
}

# ---------------------------------------------------------------------------- podman

# Podman is daemonless: "starting" it is writing the configuration of a private store (vfs, its
# own root under the state dir) and runtime (runc where installed: Debian's crun refuses to start
# containers on hybrid-cgroup hosts; the ulimits this sandbox allows); env.sh points Podman at it.
podman_configure() {
    command -v podman >/dev/null 2>&1 || return 0
    mkdir -p "$PDIR"
    local runtime=""
    command -v runc >/dev/null 2>&1 && runtime='runtime = "runc"'
    cat >"$PDIR/containers.conf.tmp" <<EOF
# Written by scripts/services.sh: the private Podman of the tests.
[engine]
$runtime

[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
EOF
    cat >"$PDIR/storage.conf.tmp" <<EOF
# Written by scripts/services.sh: the private Podman store of the tests.
[storage]
driver = "vfs"
runroot = "$PDIR/run"
graphroot = "$PDIR/storage"
EOF
    mv "$PDIR/containers.conf.tmp" "$PDIR/containers.conf"
    mv "$PDIR/storage.conf.tmp" "$PDIR/storage.conf"
}

podman_ready() { command -v podman >/dev/null 2>&1 && [[ -s "$PDIR/storage.conf" ]]; }

# ---------------------------------------------------------------------------- TLS registry

tls_port() { [[ -s "$TDIR/port" ]] && cat "$TDIR/port"; }

tls_answers() {   # 401 without a login, over TLS checked against our CA
    local port code
    port="$(tls_port)" || return 1
    code="$(curl -s --max-time 3 -o /dev/null -w '%{http_code}' --cacert "$TDIR/ca.pem" \
        "https://127.0.0.1:$port/v2/" 2>/dev/null)" || return 1
    [[ "$code" == 401 ]]
}

tls_running() { pid_alive "$TDIR/registry.pid" docker-registry && tls_answers; }

tls_stop() { stop_pid "$TDIR/registry.pid" docker-registry 10; }

# A private CA and a server certificate for 127.0.0.1/localhost, and one htpasswd login.
tls_material() {
    [[ -s "$TDIR/ca.pem" && -s "$TDIR/server.pem" && -s "$TDIR/htpasswd" ]] && return 0
    (
        umask 077
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=airgap test CA" \
            -keyout "$TDIR/ca.key" -out "$TDIR/ca.pem" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
            >/dev/null 2>&1
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
            -keyout "$TDIR/server.key" -out "$TDIR/server.csr" >/dev/null 2>&1
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' \
            >"$TDIR/ext.cnf"
        openssl x509 -req -in "$TDIR/server.csr" -CA "$TDIR/ca.pem" -CAkey "$TDIR/ca.key" \
            -CAcreateserial -days 3650 -extfile "$TDIR/ext.cnf" -out "$TDIR/server.pem" \
            >/dev/null 2>&1
        openssl rand -hex 16 >"$TDIR/password"
        htpasswd -B -b -c "$TDIR/htpasswd" airgap "$(<"$TDIR/password")" >/dev/null 2>&1
    ) || die "could not make the TLS registry's CA, certificate or htpasswd file in $TDIR"
    chmod 644 "$TDIR/ca.pem" "$TDIR/server.pem" "$TDIR/htpasswd"
}

tls_start() {
    if tls_running; then
        log "TLS registry already running (pid $(<"$TDIR/registry.pid"), 127.0.0.1:$(tls_port))"
        return 0
    fi
    tls_stop
    mkdir -p "$TDIR/data"
    tls_material
    local port
    port="$(free_port "$(tls_port || echo 0)")"
    echo "$port" >"$TDIR/port"
    cat >"$TDIR/config.yml" <<EOF
# Written by scripts/services.sh; distribution registry 2.x with TLS and htpasswd logins.
version: 0.1
log:
  level: info
  fields:
    service: airgap-test-tls-registry
storage:
  filesystem:
    rootdirectory: "$TDIR/data"
  delete:
    enabled: true
auth:
  htpasswd:
    realm: airgap-test
    path: "$TDIR/htpasswd"
http:
  addr: 127.0.0.1:$port
  tls:
    certificate: "$TDIR/server.pem"
    key: "$TDIR/server.key"
EOF
    : >"$TDIR/registry.log"
    log "starting docker-registry with TLS and logins on 127.0.0.1:$port (data $TDIR/data)"
    local t0 start_ms
    t0=$SECONDS start_ms=$(now_ms)
    spawn "$TDIR/registry.pid" "$TDIR/registry.log" /usr/bin/docker-registry serve "$TDIR/config.yml"
    while ((SECONDS - t0 < TIMEOUT)); do
        if tls_answers; then
            log "TLS registry ready after $(since "$start_ms") (pid $(<"$TDIR/registry.pid"))"
            return 0
        fi
        pid_alive "$TDIR/registry.pid" docker-registry || break
        sleep 0.2
    done
    tail -n 25 "$TDIR/registry.log" >&2
    tls_stop
    die "the TLS docker-registry did not answer https://127.0.0.1:$port/v2/ within ${TIMEOUT}s"
}

# ---------------------------------------------------------------------------- env.sh

write_env() {
    local tmp="$ENV_FILE.tmp"
    {
        echo "# Written by scripts/services.sh; source it to use the test services."
        if docker_running; then
            echo "export DOCKER_HOST='unix://$(docker_sock)'"
        elif [[ -s "$UNAVAILABLE" ]]; then
            echo "# Docker engine unavailable: $(head -n 1 "$UNAVAILABLE" | tr -d "'")"
        fi
        if registry_running; then
            echo "export AIRGAP_REGISTRY='127.0.0.1:$(registry_port)'"
        fi
        if containerd_running; then
            echo "export AIRGAP_CONTAINERD_ADDRESS='$(containerd_sock)'"
        fi
        if podman_ready; then
            echo "export CONTAINERS_CONF='$PDIR/containers.conf'"
            echo "export CONTAINERS_STORAGE_CONF='$PDIR/storage.conf'"
        fi
        if tls_running; then
            echo "export AIRGAP_TLS_REGISTRY='127.0.0.1:$(tls_port)'"
            echo "export AIRGAP_TLS_REGISTRY_CA='$TDIR/ca.pem'"
            echo "export AIRGAP_TLS_REGISTRY_USER='airgap'"
            echo "export AIRGAP_TLS_REGISTRY_PASSWORD_FILE='$TDIR/password'"
        fi
    } >"$tmp"
    mv "$tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------------------- commands

services_from_args() {   # validate names; default: all
    if (($# == 0)); then
        echo docker registry containerd tlsregistry
        return
    fi
    local s
    for s in "$@"; do
        [[ "$s" == docker || "$s" == registry || "$s" == containerd || "$s" == tlsregistry ]] ||
            die "unknown service '$s' (docker|registry|containerd|tlsregistry)"
    done
    echo "$@"
}

cmd_start() {
    ensure_packages
    ensure_binfmt
    local s
    for s in $(services_from_args "$@"); do
        case "$s" in
            docker) docker_start || true ;;
            registry) registry_start ;;
            containerd) containerd_start || true ;;
            tlsregistry) tls_start ;;
        esac
    done
    podman_configure
    write_env
    cat "$ENV_FILE"
}

cmd_stop() {
    local s
    for s in $(services_from_args "$@"); do
        case "$s" in
            docker) docker_stop; rm -f "$UNAVAILABLE" ;;
            registry) registry_stop ;;
            containerd) containerd_stop ;;
            tlsregistry) tls_stop ;;
        esac
    done
    if docker_running || registry_running || containerd_running || tls_running; then
        write_env
    else
        rm -f "$ENV_FILE"
    fi
}

cmd_status() {
    local s rc=0
    for s in $(services_from_args "$@"); do
        case "$s" in
            docker)
                if docker_running; then
                    echo "docker: running (pid $(<"$DDIR/dockerd.pid"), unix://$(docker_sock))"
                elif [[ -s "$UNAVAILABLE" ]]; then
                    echo "docker: unavailable ($(head -n 1 "$UNAVAILABLE"))"
                    rc=1
                else
                    echo "docker: stopped"
                    rc=1
                fi
                ;;
            registry)
                if registry_running; then
                    echo "registry: running (pid $(<"$RDIR/registry.pid"), 127.0.0.1:$(registry_port))"
                else
                    echo "registry: stopped"
                    rc=1
                fi
                ;;
            containerd)
                if containerd_running; then
                    echo "containerd: running (pid $(<"$CDIR/containerd.pid"), $(containerd_sock))"
                else
                    echo "containerd: stopped"
                    rc=1
                fi
                ;;
            tlsregistry)
                if tls_running; then
                    echo "tlsregistry: running (pid $(<"$TDIR/registry.pid"), https://127.0.0.1:$(tls_port))"
                else
                    echo "tlsregistry: stopped"
                    rc=1
                fi
                ;;
        esac
    done
    return "$rc"
}

cmd_env() {
    [[ -f "$ENV_FILE" ]] || die "services are not started ($ENV_FILE missing): run $0 start"
    cat "$ENV_FILE"
}

main() {
    local cmd="${1:-}"
    (($#)) && shift
    case "$cmd" in
        start | stop | status | env) ;;
        *) die "usage: $0 start | stop | status [docker|registry|containerd|tlsregistry ...] | env" ;;
    esac
    mkdir -p "$STATE" "$DDIR" "$RDIR" "$CDIR" "$TDIR"
    # One services.sh at a time per state dir.
    exec 9>"$STATE/lock"
    flock -w 180 9 || die "another services.sh holds $STATE/lock"
    "cmd_$cmd" "$@"
}

main "$@"
