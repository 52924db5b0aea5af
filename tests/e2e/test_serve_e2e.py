"""Installed means answers: the reference server's image (Debian bookworm, numpy) and
all-MiniLM-L6-v2 built into a signed bundle, installed with --docker, and

- ``airgap probe --serve`` starts it with the installed weights read-only, waits for readiness and
  passes its golden checks (numbers from sentence-transformers), on Docker and on Podman;
- a wrong answer, a server that never gets ready and one that exits are FAILs that name why;
- Ctrl-C and SIGTERM still remove the container;
- ``airgap deploy render --format kube`` passes kubernetes-validate --strict and runs for real
  under ``podman kube play``, where the same checks pass.

Docker here runs with --bridge=none, so a published port is not reachable: the probe sees that the
engine has no bridge network and runs the server on the host's network, bound to 127.0.0.1 through
$(AIRGAP_SERVE_HOST). Podman publishes on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from packager.probe import serve as serve_mod
from packager.probe.serve import CLEANUP_TIMEOUT, run_check, run_serve
from tests.probe.util import validator
from tests.support.cli import airgap
from tests.support.projects import PASS, make_key
from tests.support.services import minilm_model_dir, require, require_services
from tests.support.serving import copy_into_podman, podman_env, serving_image, serving_manifest

pytestmark = [pytest.mark.slow, pytest.mark.services]
NAME = "served"
LABEL = "label=dev.airgap.probe=serve"


@dataclass(frozen=True)
class Site:
    prefix: Path
    tar: Path
    pub: Path
    layout: Path

    @property
    def descriptor(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(
            (self.prefix / "bundles" / NAME / "current" / ".airgap" / "bundle.json").read_text()
        )
        return doc

    @property
    def weights(self) -> str:
        return str(self.prefix / "bundles" / NAME / "current" / "model")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    require_services("docker")
    layout = serving_image()
    root = tmp_path_factory.mktemp("serve")
    manifest = serving_manifest(root, require(minilm_model_dir), layout, NAME)
    priv, pub, _ = make_key(root, "k")
    env = {"AIRGAP_KEY_PASSPHRASE": PASS, "AIRGAP_CACHE_DIR": str(root / "cache")}
    r = airgap(
        "build", str(manifest), "--key", str(priv), "--out", str(root / "out"), env=env, timeout=600
    )
    assert r.returncode == 0, r.stdout + r.stderr
    tar = root / "out" / f"{NAME}-1.0.0.airgap.tar"
    r = airgap(
        "install", str(tar), "--prefix", str(root / "site"), "--key", str(pub), "--docker",
        "--no-probe", timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return Site(root / "site", tar, pub, layout)


def leftovers(engine: str = "docker", env: dict[str, str] | None = None) -> list[str]:
    r = subprocess.run(
        [engine, "ps", "-a", "-q", "--filter", LABEL], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def probe_serve(
    site: Site, *extra: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    r = airgap(
        "probe", "--installed", NAME, "--prefix", str(site.prefix), "--serve", "--json", *extra,
        env=env, timeout=600,
    )  # fmt: skip
    assert r.returncode in (0, 1, 3), r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    assert list(validator().iter_errors(doc)) == []
    return r.returncode, doc


def test_the_installed_model_answers_on_docker(site: Site) -> None:
    code, doc = probe_serve(site)
    serve = doc["serve"]
    assert code == 0, serve
    assert serve["status"] == "PASS" and serve["engine"] == "docker"
    assert serve["url"].startswith("http://127.0.0.1:")
    assert serve["removed"] is True and leftovers() == []
    assert 0 < serve["time_to_ready_s"] < 120
    assert [c["name"] for c in serve["checks"]] == ["models", "embed-cat"]
    for c in serve["checks"]:
        assert c["status"] == "PASS" and c["http_status"] == 200
        assert 0 < c["latency_ms"] <= c["budget_ms"]
    rows = {c["title"]: c["status"] for c in doc["checks"]}
    assert rows["serving"] == "PASS" and rows["serve check embed-cat"] == "PASS"
    print(
        f"\ndocker: ready in {serve['time_to_ready_s']:.2f} s; "
        + ", ".join(f"{c['name']} {c['latency_ms']:.0f} ms" for c in serve["checks"])
    )


def spec_with(site: Site, **changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(json.dumps(site.descriptor["serve"]))
    spec.update(changes)
    return spec


@pytest.mark.parametrize(
    ("changes", "words", "with_checks"),
    [
        (
            {"checks": [{"name": "wrong", "method": "POST", "path": "/v1/embeddings",
                         "body": {"input": "The cat sits on the mat."}, "has_body": True,
                         "status": 200, "latency_ms": 5000,
                         "json": [{"path": "$.data[0].embedding[0]", "kind": "range", "value": [0.5, 1]}]}]},
            "1/2 checks passed",  # the models check passes, the wrong one does not
            True,
        ),
        ({"readiness": {"path": "/nope", "status": 200, "timeout_s": 3}}, "not ready after 3 s", False),
        ({"args": ["--model", "/nothing", "--host", "127.0.0.1", "--port", "$(AIRGAP_SERVE_PORT)"]},
         "exited (code 1)", False),
    ],
    ids=["wrong-answer", "never-ready", "exits"],
)  # fmt: skip
def test_failures_say_why_and_remove_the_container(
    site: Site, changes: dict[str, Any], words: str, with_checks: bool
) -> None:
    if with_checks:
        changes = {"checks": site.descriptor["serve"]["checks"][:1] + changes["checks"]}
    report = run_serve(
        spec_with(site, **changes), site.descriptor["target"], site.descriptor["images"],
        site.weights, timeout=60,
    )  # fmt: skip
    assert report.status == "FAIL", report.reason
    assert words in report.reason
    assert report.removed is True and leftovers() == []
    if with_checks:
        wrong = report.checks[-1]
        assert wrong.status == "FAIL" and "outside [0.5, 1]" in wrong.reason
    elif "exited" in words:  # what the server said, for the operator
        assert report.logs is not None and "error:" in report.logs


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_probe_removes_the_container(site: Site, sig: int) -> None:
    spec = spec_with(site, readiness={"path": "/nope", "status": 200, "timeout_s": 120})
    script = (  # Ctrl-C as at a terminal, even when this suite runs with SIGINT ignored (a
        # background job of a non-interactive shell: its children inherit the ignore)
        "import json, signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from packager.probe.serve import run_serve\n"
        "spec, target, images, weights = json.loads(sys.argv[1])\n"
        "try:\n"
        "    run_serve(spec, target, images, weights, progress=lambda l: print(l, flush=True))\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(130)\n"
    )
    args = json.dumps([spec, site.descriptor["target"], site.descriptor["images"], site.weights])
    proc = subprocess.Popen(
        [sys.executable, "-c", script, args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("waiting for GET"):
                break
        assert len(leftovers()) == 1  # it runs
        proc.send_signal(sig)
        # the probe's own worst case: `rm -f` up to its cleanup timeout, then an inspect
        try:
            out, err = proc.communicate(timeout=CLEANUP_TIMEOUT + 90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the probe did not stop; it said:\n{out}\n{err}")
        assert proc.returncode == 130, f"{out}\n{err}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert leftovers() == []


# ---------------------------------------------------------------- Podman and Kubernetes


@pytest.fixture(scope="module")
def podman(site: Site, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = podman_env(tmp_path_factory.mktemp("podman"))
    copy_into_podman(site.layout, env)
    return env


def test_the_installed_model_answers_on_podman(site: Site, podman: dict[str, str]) -> None:
    code, doc = probe_serve(site, "--engine", "podman", env=podman)
    serve = doc["serve"]
    assert code == 0, serve
    assert serve["engine"] == "podman" and serve["network"].startswith("published on 127.0.0.1:")
    assert serve["removed"] is True and leftovers("podman", podman) == []
    print(
        f"\npodman: ready in {serve['time_to_ready_s']:.2f} s; "
        + ", ".join(f"{c['name']} {c['latency_ms']:.0f} ms" for c in serve["checks"])
    )


def podman_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=env, timeout=300)


def wait_ready(base: str, path: str, timeout: float) -> float:
    opener = serve_mod._opener()
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        status, _data, _err = serve_mod.http(opener, "GET", base + path, None, 2.0)
        if status == 200:
            return time.monotonic() - t0
        time.sleep(0.25)
    raise AssertionError(f"{base}{path} not ready in {timeout} s")


@pytest.fixture
def kube_file(site: Site, tmp_path: Path) -> Iterator[tuple[Path, int]]:
    port = serve_mod.free_port()
    out = tmp_path / "kube.yaml"
    r = airgap(
        "deploy", "render", "--installed", NAME, "--prefix", str(site.prefix), "--format", "kube",
        "--host-port", str(port), "-o", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    yield out, port


def test_the_rendered_deployment_validates_and_runs_under_podman_kube_play(
    site: Site, podman: dict[str, str], kube_file: tuple[Path, int]
) -> None:
    out, port = kube_file
    validate = shutil.which("kubernetes-validate") or str(
        Path(sys.executable).parent / "kubernetes-validate"
    )
    r = subprocess.run([validate, "--strict", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passed" in r.stdout + r.stderr
    play = podman_cli(podman, "kube", "play", str(out))
    try:
        assert play.returncode == 0, play.stderr
        base = f"http://127.0.0.1:{port}"
        ready = wait_ready(base, site.descriptor["serve"]["readiness"]["path"], 120)
        opener = serve_mod._opener()
        results = [run_check(opener, base, c) for c in site.descriptor["serve"]["checks"]]
        assert [c.status for c in results] == ["PASS", "PASS"], [c.reason for c in results]
        print(f"\npodman kube play: ready in {ready:.2f} s after play returned")
    finally:
        down = podman_cli(podman, "kube", "down", str(out))
        assert down.returncode == 0, down.stderr


def test_compose_render_points_at_the_installed_version(site: Site) -> None:
    import yaml

    r = airgap(
        "deploy", "render", "--installed", NAME, "--prefix", str(site.prefix), "--format", "compose"
    )
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    svc = doc["services"]["server"]
    version_dir = (site.prefix / "bundles" / NAME / "1.0.0").resolve()
    assert svc["volumes"][0]["source"] == str(version_dir / "model")
    assert svc["image"].startswith("airgap.local/minilm-server@sha256:")
    assert svc["ports"] == ["127.0.0.1:8000:8000"]
    r = airgap(  # --json: schemas/deploy-report (checked by tests.support.cli)
        "deploy", "render", "--installed", NAME, "--prefix", str(site.prefix), "--format",
        "compose", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rendered = json.loads(r.stdout)
    assert (rendered["format"], rendered["image"]) == ("compose", svc["image"])
    assert rendered["documents"][0]["services"]["server"]["volumes"] == svc["volumes"]


def test_a_tampered_descriptor_is_not_rendered(site: Site, tmp_path: Path) -> None:
    copy = tmp_path / "site"
    shutil.copytree(site.prefix, copy, symlinks=True)
    meta = copy / "bundles" / NAME / "1.0.0" / ".airgap" / "bundle.json"
    meta.chmod(0o644)
    meta.write_bytes(meta.read_bytes().replace(b'"port": 8000', b'"port": 8001'))
    r = airgap("deploy", "render", "--installed", NAME, "--prefix", str(copy))
    assert r.returncode == 1
    assert "not the one that was installed" in r.stderr
