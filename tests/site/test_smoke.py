"""The smoke runner (packager/probe/smoke.py): the real docker CLI and engine running the images
loaded from the bundle, and a recording stand-in CLI for the device flags of machines we lack."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from packager.bundle import layout
from packager.bundle.reader import open_bundle
from packager.probe.smoke import FAIL, NOT_RUN, PASS, device_flags, run_smoke
from packager.site import images as site
from tests.site.bundles import SiteBundle, remove_images

if TYPE_CHECKING:
    import docker

NONE = {"accelerator": {"vendor": "none"}}


@pytest.fixture(scope="module")
def loaded(site_bundle: SiteBundle, docker_client: docker.DockerClient) -> Iterator[list[Any]]:
    """The bundle's images loaded into the engine; the image list the probe would pass."""
    with open_bundle(site_bundle.tar) as b:
        site.load_into_docker(b, docker_client)
        images = [i.to_json() for i in site.image_entries(b)]
    yield images
    remove_images(docker_client, site_bundle.config_ids)


def smoke(command: list[str], **kw: Any) -> dict[str, Any]:
    return {"image": "serving", "command": command, "env": {}, "timeout_s": 30, **kw}


# ============================================================================ real engine


@pytest.mark.services
def test_the_bundles_own_smoke_passes(site_bundle: SiteBundle, loaded: list[Any]) -> None:
    doc = json.loads((site_bundle.folder / layout.BUNDLE_JSON).read_text())
    status, reason = run_smoke(doc["smoke"], doc["target"], loaded, timeout=30)
    assert (status, doc["smoke"]["stdout_contains"]) == (PASS, site_bundle.markers["serving"])
    assert "exit code 0" in reason and site_bundle.refs["serving"] in reason


@pytest.mark.services
def test_weights_env_and_roles(
    site_bundle: SiteBundle, loaded: list[Any], minilm_dir: Path
) -> None:
    script = "test -f /weights/config.json && ! touch /weights/x 2>/dev/null && echo ro-$GREETING"
    status, reason = run_smoke(
        smoke(["sh", "-c", script], env={"GREETING": "hi"}, stdout_contains="ro-hi"),
        NONE,
        loaded,
        weights_dir=str(minilm_dir),
    )
    assert status == PASS, reason
    status, reason = run_smoke(
        smoke(["cat", "/marker"], image="tool", stdout_contains=site_bundle.markers["tool"]),
        NONE,
        loaded,
    )
    assert status == PASS and site_bundle.refs["tool"] in reason, reason
    status, reason = run_smoke(  # by reference
        smoke(["true"], image=site_bundle.refs["tool"]), NONE, loaded
    )
    assert status == PASS, reason


@pytest.mark.services
def test_wrong_exit_code_and_missing_output_fail(loaded: list[Any]) -> None:
    status, reason = run_smoke(smoke(["sh", "-c", "echo oops >&2; exit 3"]), NONE, loaded)
    assert status == FAIL and "exit code 3, expected 0" in reason and "oops" in reason
    status, reason = run_smoke(
        smoke(["echo", "something else"], stdout_contains="needle"), NONE, loaded
    )
    assert status == FAIL and "lacks 'needle'" in reason and "something else" in reason
    status, reason = run_smoke(smoke(["sh", "-c", "exit 3"], exit_code=3), NONE, loaded)
    assert status == PASS, reason


@pytest.mark.services
def test_a_smoke_past_its_timeout_is_killed(
    loaded: list[Any], docker_client: docker.DockerClient
) -> None:
    started = time.monotonic()
    status, reason = run_smoke(smoke(["sleep", "60"], timeout_s=1), NONE, loaded)
    assert time.monotonic() - started < 20
    assert status == FAIL and "timed out after 1 s" in reason
    m = re.search(r"container (airgap-smoke-[0-9a-f]+)", reason)
    assert m is not None
    assert docker_client.containers.list(all=True, filters={"name": m.group(1)}) == []


@pytest.mark.services
def test_what_cannot_run_is_named(
    loaded: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nvidia = {"accelerator": {"vendor": "nvidia", "chips": ["h100"], "count": 1}}
    status, reason = run_smoke(smoke(["nvidia-smi"]), nvidia, loaded, dev=str(tmp_path))
    assert status == NOT_RUN and "no NVIDIA GPU" in reason and "is in the engine" in reason
    status, reason = run_smoke(smoke(["true"], image="nope"), NONE, loaded)
    assert status == NOT_RUN and "'nope'" in reason
    gone = [{"ref": "airgap-test/not-loaded:v1"}]
    status, reason = run_smoke(smoke(["true"]), NONE, gone)
    assert status == NOT_RUN and "not in the Docker engine" in reason
    status, reason = run_smoke(smoke(["true"]), NONE, loaded, docker=str(tmp_path / "docker"))
    assert status == NOT_RUN and "docker CLI" in reason
    assert run_smoke({}, NONE, loaded)[0] == NOT_RUN
    sock = f"unix://{tmp_path}/none.sock"
    monkeypatch.setenv("DOCKER_HOST", sock)
    status, reason = run_smoke(smoke(["true"]), NONE, loaded, timeout=10)
    assert status == NOT_RUN and f"DOCKER_HOST={sock}" in reason


# ============================================================================ device flags

FAKE_DOCKER = """\
#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[0] == "info":
    print(json.dumps({{"ServerVersion": "24.0", "Runtimes": json.loads(os.environ["FAKE_RUNTIMES"])}}))
elif args[0] == "image":
    print("sha256:" + "a" * 64)
elif args[0] == "run":
    print("device-ok")
"""


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """(the stand-in docker, its log, a /dev folder); PATH holds only the stand-in's folder."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "docker"
    exe.write_text(FAKE_DOCKER.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    monkeypatch.setenv("FAKE_RUNTIMES", "{}")
    monkeypatch.setenv("PATH", str(bindir))
    dev = tmp_path / "dev"
    dev.mkdir()
    return exe, log, dev


def run_argv(log: Path) -> list[str]:
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    runs = [c for c in calls if c[0] == "run"]
    assert len(runs) == 1, calls
    argv: list[str] = runs[0]
    return argv


def test_nvidia_flags(fake_cli: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    exe, log, dev = fake_cli
    (dev / "nvidia0").touch()
    images = [{"ref": "vllm/vllm-openai:v0.6.3", "role": "serving"}]
    nvidia = {"accelerator": {"vendor": "nvidia"}}
    args = smoke(["python3", "-c", "import torch"], stdout_contains="device-ok")
    # only the runtime registered
    monkeypatch.setenv(
        "FAKE_RUNTIMES", '{"runc": {}, "nvidia": {"path": "nvidia-container-runtime"}}'
    )
    status, reason = run_smoke(args, nvidia, images, weights_dir=str(dev), dev=str(dev))
    assert status == PASS, reason
    argv = run_argv(log)
    assert argv[:4] == ["run", "--rm", "--network", "none"]
    i = argv.index("--runtime")
    assert argv[i : i + 4] == ["--runtime", "nvidia", "-e", "NVIDIA_VISIBLE_DEVICES=all"]
    assert f"{dev}:/weights:ro" in argv
    assert argv[-4:] == ["vllm/vllm-openai:v0.6.3", "python3", "-c", "import torch"]
    # the toolkit's hook installed: --gpus all
    log.unlink()
    hook = exe.parent / "nvidia-container-runtime-hook"
    hook.write_text("#!/bin/sh\n")
    hook.chmod(0o755)
    assert run_smoke(args, nvidia, images, dev=str(dev))[0] == PASS
    argv = run_argv(log)
    assert "--gpus" in argv and argv[argv.index("--gpus") + 1] == "all" and "--runtime" not in argv
    # neither
    hook.unlink()
    monkeypatch.setenv("FAKE_RUNTIMES", '{"runc": {}}')
    status, reason = run_smoke(args, nvidia, images, dev=str(dev))
    assert status == NOT_RUN and "nvidia-container-toolkit" in reason


def test_ascend_flags(fake_cli: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _exe, log, dev = fake_cli
    for n in range(8):
        (dev / f"davinci{n}").touch()
    for extra in ("davinci_manager", "devmm_svm", "hisi_hdc"):
        (dev / extra).touch()
    images = [{"ref": "mindie:2.1.RC1", "role": "serving"}]
    huawei = {"accelerator": {"vendor": "huawei", "chips": ["ascend910b3"], "count": 8}}
    args = smoke(["npu-smi", "info"])
    monkeypatch.setenv("FAKE_RUNTIMES", '{"runc": {}, "ascend": {"path": "ascend-docker-runtime"}}')
    assert run_smoke(args, huawei, images, dev=str(dev))[0] == PASS
    argv = run_argv(log)
    i = argv.index("--runtime")
    assert argv[i : i + 4] == ["--runtime", "ascend", "-e", "ASCEND_VISIBLE_DEVICES=0-7"]
    assert "--device" not in argv
    # no runtime: the devices themselves
    flags, how = device_flags(huawei, {"runc": {}}, dev=str(dev), exists=os.path.exists)
    assert flags is not None and "no ascend runtime" in how
    devices = [flags[k + 1] for k, f in enumerate(flags) if f == "--device"]
    assert devices == [f"{dev}/davinci{n}" for n in range(8)] + [
        f"{dev}/{x}" for x in ("davinci_manager", "devmm_svm", "hisi_hdc")
    ]
    (dev / "davinci3").unlink()
    flags, how = device_flags(huawei, {"ascend": {}}, dev=str(dev))
    assert flags == ["--runtime", "ascend", "-e", "ASCEND_VISIBLE_DEVICES=0-2,4-7"]
    for n in range(8):
        (dev / f"davinci{n}").unlink(missing_ok=True)
    status, reason = run_smoke(args, huawei, images, dev=str(dev))
    assert status == NOT_RUN and "no Ascend NPU" in reason
