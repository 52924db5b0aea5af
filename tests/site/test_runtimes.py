"""The pure parts of the containerd and Podman loads: which runtime the flags choose, containerd's
target and arguments, image names, chain IDs, what ctr and podman print, streaming into a tool,
and how a receipt learns a later load. The real daemons are in tests/e2e/test_runtimes.py."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from packager.errors import InputError
from packager.site.images.containerd import (
    ContainerdTarget,
    chain_id,
    parse_images,
    parse_plugin_roots,
    parse_snapshotters,
    server_version,
)
from packager.site.images.docker import EngineError
from packager.site.images.podman import has_manifest, parse_info, pull_argv
from packager.site.images.runtime import feed_tool, run_tool, runtime_name
from packager.site.install import runtime_options
from packager.site.receipts import merge_images
from tests.support.cli import cli

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64

# ---------------------------------------------------------------------------- flags


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        ({"docker": True, "containerd": True}, "--docker and --containerd were both given"),
        ({"containerd": True, "podman": True}, "--containerd and --podman were both given"),
        ({"docker": True, "podman": True}, "--docker and --podman were both given"),
        ({"docker": True, "containerd": True, "podman": True}, "--docker and --containerd and"),
        ({"namespace": "k8s.io"}, "--namespace applies to --containerd only"),
        ({"podman": True, "address": "/s"}, "--address applies to --containerd only"),
        ({"docker": True, "snapshotter": "native"}, "--snapshotter applies to --containerd only"),
        ({"containerd": True, "namespace": "bad ns"}, "is not a containerd namespace"),
        ({"containerd": True, "snapshotter": "Over/lay"}, "is not a snapshotter name"),
        ({"containerd": True, "address": "a b"}, "is not a socket path"),
    ],
)
def test_runtime_flags_that_do_not_go_together_are_usage_errors(
    flags: dict[str, Any], error: str
) -> None:
    args: dict[str, Any] = {"docker": False, "containerd": False, "podman": False, **flags}
    with pytest.raises(InputError) as err:
        runtime_options(**args, environ={})
    assert error in err.value.message and err.value.exit_code == 2
    assert err.value.hint


@pytest.mark.parametrize(
    ("flags", "environ", "want"),
    [
        ({}, {}, (False, None, False)),
        ({"docker": True}, {}, (True, None, False)),
        ({"podman": True}, {}, (False, None, True)),
        (
            {"containerd": True},
            {},
            (False, ContainerdTarget("/run/containerd/containerd.sock", "k8s.io", "overlayfs"), False),
        ),
        (
            {"containerd": True},
            {"CONTAINERD_ADDRESS": "/x.sock", "CONTAINERD_NAMESPACE": "default",
             "CONTAINERD_SNAPSHOTTER": "native"},
            (False, ContainerdTarget("/x.sock", "default", "native"), False),
        ),
        (
            {"containerd": True, "address": "unix:///y.sock", "namespace": "team-a.prod",
             "snapshotter": "native"},
            {"CONTAINERD_ADDRESS": "/x.sock", "CONTAINERD_NAMESPACE": "default"},
            (False, ContainerdTarget("/y.sock", "team-a.prod", "native"), False),
        ),
    ],
)  # fmt: skip
def test_runtime_flags_choose_one_runtime_with_ctr_defaults(
    flags: dict[str, Any], environ: dict[str, str], want: tuple[Any, ...]
) -> None:
    args: dict[str, Any] = {"docker": False, "containerd": False, "podman": False, **flags}
    assert runtime_options(**args, environ=environ) == want


def test_ctr_is_told_the_socket_namespace_and_snapshotter() -> None:
    t = ContainerdTarget("/run/c.sock", "k8s.io", "native")
    assert t.import_argv("/usr/bin/ctr") == [
        "/usr/bin/ctr", "--address", "/run/c.sock", "--namespace", "k8s.io",
        "images", "import", "--snapshotter", "native", "-",
    ]  # fmt: skip
    assert t.ctr("ctr", "images", "ls")[-2:] == ["images", "ls"]
    assert t.to_json() == {"address": "/run/c.sock", "namespace": "k8s.io", "snapshotter": "native"}


def test_podman_pulls_by_digest_over_plain_http_from_loopback() -> None:
    ref = f"127.0.0.1:4000/airgap-load/abc@{D1}"
    assert pull_argv("/usr/bin/podman", ref) == [
        "/usr/bin/podman", "pull", "--quiet", "--tls-verify=false", ref
    ]  # fmt: skip


# ---------------------------------------------------------------------------- names, chains


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36"),
        ("index.docker.io/org/app:2", "docker.io/org/app:2"),
        ("ghcr.io/org/app:2", "ghcr.io/org/app:2"),
        ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app:v1"),
        (f"registry.example.com/app:1@{D2}", "registry.example.com/app:1"),
        (f"registry.example.com/app@{D2}", f"registry.example.com/app@{D1}"),  # the manifest's
    ],
)
def test_images_are_named_as_kubernetes_asks_for_them(ref: str, name: str) -> None:
    assert runtime_name(ref, D1) == name


def test_the_chain_id_of_a_layer_stack() -> None:
    assert chain_id([D1]) == D1
    two = "sha256:" + hashlib.sha256(f"{D1} {D2}".encode()).hexdigest()
    assert chain_id([D1, D2]) == two
    assert chain_id([D1, D2, D3]) == "sha256:" + hashlib.sha256(f"{two} {D3}".encode()).hexdigest()
    with pytest.raises(ValueError):
        chain_id([])


# ---------------------------------------------------------------------------- what tools print

CTR_VERSION = """\
Client:
  Version:  1.6.20~ds1
  Revision: 1.6.20~ds1-1+deb12u3
  Go version: go1.19.8

Server:
  Version:  1.6.20~ds1
  Revision: 1.6.20~ds1-1+deb12u3
  UUID: 9efdd748-2f36-4673-8934-3ed0d615fbb8
"""

CTR_PLUGINS = """\
TYPE                            ID                       PLATFORMS      STATUS    
io.containerd.content.v1        content                  -              ok        
io.containerd.snapshotter.v1    aufs                     linux/amd64    skip      
io.containerd.snapshotter.v1    devmapper                linux/amd64    error     
io.containerd.snapshotter.v1    native                   linux/amd64    ok        
io.containerd.snapshotter.v1    overlayfs                linux/amd64    ok        
io.containerd.runtime.v2        task                     linux/amd64    ok        
"""  # noqa: W291 - ctr pads its columns

CTR_IMAGES = f"""\
REF                                   TYPE                                                 DIGEST    SIZE    PLATFORMS   LABELS 
127.0.0.1:34071/airgap-test/busybox:1 application/vnd.docker.distribution.manifest.v2+json {D1} 1.0 MiB linux/amd64 -      
docker.io/library/app:2               application/vnd.oci.image.index.v1+json              {D2} 5.2 MiB linux/amd64,linux/arm64/v8 -
"""  # noqa: W291 - as ctr prints it


CTR_PLUGINS_DETAILED = """\
Type:          io.containerd.content.v1
ID:            content
Exports:      
               root      /var/lib/containerd/io.containerd.content.v1.content
                            
Type:          io.containerd.snapshotter.v1
ID:            native
Platforms:     linux/amd64
Exports:      
               root      /var/lib/containerd/io.containerd.snapshotter.v1.native
                            
Type:          io.containerd.metadata.v1
ID:            bolt
Requires:     
               io.containerd.content.v1
Exports:      
               path        /var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db
"""  # noqa: W291, W293 - as ctr prints it


def test_what_ctr_prints_is_read() -> None:
    assert server_version(CTR_VERSION) == "1.6.20~ds1"
    assert server_version("Client:\n  Version: 1\n") is None
    assert parse_snapshotters(CTR_PLUGINS) == {
        "aufs": "skip", "devmapper": "error", "native": "ok", "overlayfs": "ok",
    }  # fmt: skip
    assert parse_images(CTR_IMAGES) == {
        "127.0.0.1:34071/airgap-test/busybox:1": D1,
        "docker.io/library/app:2": D2,
    }
    assert parse_images("REF TYPE DIGEST\n") == {}
    assert parse_plugin_roots(CTR_PLUGINS_DETAILED) == {
        "io.containerd.content.v1/content": "/var/lib/containerd/io.containerd.content.v1.content",
        "io.containerd.snapshotter.v1/native":
            "/var/lib/containerd/io.containerd.snapshotter.v1.native",
    }  # fmt: skip


def test_podman_info_and_inspect_are_read() -> None:
    info = {
        "host": {"os": "linux", "arch": "amd64"},
        "store": {"graphRoot": "/var/lib/containers/storage", "graphDriverName": "overlay"},
        "version": {"Version": "4.3.1"},
    }
    store = parse_info(json.dumps(info))
    assert (store.version, store.graph_root, store.driver) == (
        "4.3.1", "/var/lib/containers/storage", "overlay",
    )  # fmt: skip
    assert str(store.platform) == "linux/amd64"
    with pytest.raises(EngineError):
        parse_info("[1]")
    assert has_manifest({"Digest": D1}, D1)
    assert has_manifest({"Digest": D2, "RepoDigests": [f"docker.io/a/b@{D1}"]}, D1)
    assert not has_manifest({"Digest": D2, "RepoDigests": [f"docker.io/a/b@{D3}", 7]}, D1)


# ---------------------------------------------------------------------------- running tools


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_feed_tool_streams_into_stdin_and_returns_stdout(tmp_path: Path) -> None:
    out = tmp_path / "got"
    code = (
        f"import sys; d = sys.stdin.buffer.read(); open({str(out)!r}, 'wb').write(d); print(len(d))"
    )
    got = feed_tool(_py(code), iter([b"a" * 5000, b"b" * 7]), what="t", hint="h", timeout=60)
    assert got.strip() == "5007" and out.read_bytes() == b"a" * 5000 + b"b" * 7


def test_a_stream_that_fails_is_cut_short_and_the_error_raised(tmp_path: Path) -> None:
    out = tmp_path / "got"
    code = f"import sys; open({str(out)!r}, 'wb').write(sys.stdin.buffer.read())"

    def chunks() -> Any:
        yield b"first"
        raise InputError("blob sha256:... does not match")

    with pytest.raises(InputError, match="does not match"):
        feed_tool(_py(code), chunks(), what="t", hint="h", timeout=60)
    assert out.read_bytes() == b"first"  # the tool saw the stream end there


@pytest.mark.parametrize(
    ("code", "said"),
    [
        ("import sys; sys.stdin.read(); sys.stderr.write('ctr: unexpected EOF\\n'); sys.exit(3)",
         "failed (exit 3): 'ctr: unexpected EOF'"),
        ("import sys; sys.stderr.write('refused\\x1b[2J\\n'); sys.exit(1)",
         "'refused\\x1b[2J'"),  # control characters made visible
    ],
)  # fmt: skip
def test_a_tool_that_refuses_is_reported_with_its_words(code: str, said: str) -> None:
    with pytest.raises(EngineError) as err:
        feed_tool(_py(code), iter([b"x" * (1 << 20)] * 8), what="importing", hint="h", timeout=60)
    assert said in err.value.message and err.value.message.startswith("importing: ")


def test_run_tool_names_a_tool_that_fails_or_hangs() -> None:
    with pytest.raises(EngineError, match=r"exit 2\): 'no such socket'"):
        run_tool(_py("import sys; print('no such socket', file=sys.stderr); sys.exit(2)"),
                 what="asking", hint="h", timeout=60)  # fmt: skip
    with pytest.raises(EngineError, match="did not answer in 1 s"):
        run_tool(_py("import time; time.sleep(30)"), what="asking", hint="h", timeout=1)
    assert run_tool(_py("print('ok')"), what="asking", hint="h", timeout=60) == "ok\n"


# ---------------------------------------------------------------------------- receipts


def test_a_later_load_replaces_the_same_image_in_the_same_place_and_keeps_the_rest() -> None:
    docker = {"into": "docker", "ref": "a:1", "status": "loaded"}
    ctd = {
        "into": "containerd",
        "ref": "a:1",
        "namespace": "k8s.io",
        "address": "/s",
        "status": "loaded",
    }
    other_ns = {**ctd, "namespace": "default"}
    again = {**ctd, "status": "present"}
    assert merge_images([docker, ctd, other_ns], [again]) == [docker, other_ns, again]
    assert merge_images([], [docker]) == [docker]


def test_the_cli_refuses_two_runtimes_with_a_usage_error(tmp_path: Path) -> None:
    r = cli("install", str(tmp_path / "b.airgap.tar"), "--prefix", str(tmp_path / "site"),
            "--key", str(tmp_path / "k.pub"), "--docker", "--podman")  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--docker and --podman were both given" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "site").exists()


def test_the_archive_leaves_out_layers_containerd_holds_but_never_a_manifest_or_config() -> None:
    from packager.site.images.containerd import archive_blobs
    from packager.site.images.listing import Blob, BundleImage, ImageManifest

    def image(ref: str, manifest: str, config: str, layers: list[str]) -> BundleImage:
        m = ImageManifest(
            Blob(manifest, 1, "m"), "linux/amd64", Blob(config, 2, "c"),
            tuple(Blob(d, 3, "l") for d in layers),
        )  # fmt: skip
        return BundleImage(ref, "serving", "linux/amd64", m, None, None, m.blob, False, (m,), ())

    a = image("a:1", D1, D2, [D3, "sha256:" + "4" * 64])
    b = image("b:1", D1, D2, [D3])  # the same image under another name
    got = [(i.ref, blob.digest, what) for i, blob, what in archive_blobs([a, b])]
    assert got == [("a:1", D1, "manifest"), ("a:1", D2, "image config"), ("a:1", D3, "layer"),
                   ("a:1", "sha256:" + "4" * 64, "layer")]  # fmt: skip
    held = frozenset({D1, D2, D3})
    got = [(blob.digest, what) for _, blob, what in archive_blobs([a, b], held)]
    assert got == [(D1, "manifest"), (D2, "image config"), ("sha256:" + "4" * 64, "layer")]
