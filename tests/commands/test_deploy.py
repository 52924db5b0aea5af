"""`airgap deploy render`: what a Deployment and a compose file say for each kind of target, checked
against the Kubernetes schemas (kubernetes-validate --strict), and the errors for what cannot be
rendered. The real run (podman kube play) is in tests/e2e/test_serve_e2e.py."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from packager.bundle.descriptor import (
    AcceleratorSpec,
    ImageRecord,
    JsonExpectationSpec,
    ReadinessSpec,
    ServeCheckSpec,
    ServeSpec,
    TargetSpec,
)
from packager.commands.deploy import (
    Installed,
    RenderError,
    compose_document,
    device_resource,
    k8s_name,
    kube_documents,
    to_yaml,
)
from tests.support.descriptors import make_descriptor

DIGEST = "sha256:" + "ab" * 32
SERVE = ServeSpec(
    image="serving",
    command=(),
    args=("--host", "$(AIRGAP_SERVE_HOST)", "--port=$(AIRGAP_SERVE_PORT)", "--price=$$5"),
    env={"URL": "http://$(AIRGAP_SERVE_HOST):$(AIRGAP_SERVE_PORT)/v1"},
    port=8000,
    weights="/models/m",
    readiness=ReadinessSpec("/health", 200, 600),
    checks=(
        ServeCheckSpec("c", "GET", "/v1/models", None, False, 200, None, (JsonExpectationSpec("$.object", "equals", "list"),)),
    ),
    device_resource=None,
)  # fmt: skip


def installed(
    vendor: str = "none",
    chips: tuple[str, ...] = (),
    count: int = 1,
    serve: ServeSpec | None = SERVE,
    digest: str | None = DIGEST,
    target: str | None = None,
) -> Installed:
    d = make_descriptor(
        name="qwen2.5-7b",
        version="1.2.0",
        target=target,
        images=[ImageRecord("registry.example.org/team/server:2.1", "serving", "linux/amd64", digest, None, DIGEST)],
    )  # fmt: skip
    d = dataclasses.replace(
        d,
        target=TargetSpec(target, "linux/amd64", AcceleratorSpec(vendor, chips, count, None), d.target.stack, None),
        serve=serve,
    )  # fmt: skip
    return Installed(d, "1.2.0", Path("/srv/airgap/bundles/qwen2.5-7b/1.2.0"))


def valid_k8s(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def container(doc: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = doc["spec"]["template"]["spec"]["containers"][0]
    return c


# ---------------------------------------------------------------- device-plugin resources


@pytest.mark.parametrize(
    ("vendor", "chips", "override", "plugin", "resource"),
    [
        ("nvidia", ("h100",), None, "mind-cluster", "nvidia.com/gpu"),
        ("nvidia", ("h100", "h200"), None, "hami", "nvidia.com/gpu"),
        ("huawei", ("ascend910b3",), None, "mind-cluster", "huawei.com/Ascend910"),
        ("huawei", ("ascend910c",), None, "mind-cluster", "huawei.com/Ascend910"),
        ("huawei", ("ascend910b3", "ascend910b4"), None, "mind-cluster", "huawei.com/Ascend910"),
        ("huawei", ("ascend310p3",), None, "mind-cluster", "huawei.com/Ascend310P"),
        ("huawei", ("ascend910b3",), None, "hami", "huawei.com/Ascend910B3"),
        ("huawei", ("ascend910b4",), None, "hami", "huawei.com/Ascend910B4"),
        ("huawei", ("ascend310p3",), None, "hami", "huawei.com/Ascend310P"),
        ("huawei", ("ascend910b3",), "example.com/npu", "mind-cluster", "example.com/npu"),
        ("none", (), None, "mind-cluster", None),
    ],
)
def test_device_resource_per_chip(
    vendor: str, chips: tuple[str, ...], override: str | None, plugin: str, resource: str | None
) -> None:
    assert device_resource(vendor, chips, override, plugin) == resource


@pytest.mark.parametrize(
    ("chips", "plugin", "words"),
    [
        (("ascend310b1",), "mind-cluster", "ascend310b1"),
        (("ascend910b3", "ascend310p3"), "mind-cluster", "different resources"),
        (("ascend910b3", "ascend910b4"), "hami", "different resources"),
        (("ascend910c",), "hami", "no hami device-plugin resource"),
    ],
)
def test_chips_without_one_resource_need_the_manifest_to_say(
    chips: tuple[str, ...], plugin: str, words: str
) -> None:
    with pytest.raises(RenderError) as exc:
        device_resource("huawei", chips, None, plugin)
    assert words in exc.value.message and "serve.device_resource" in (exc.value.hint or "")


# ---------------------------------------------------------------- Kubernetes


def test_a_cpu_deployment() -> None:
    (doc,), image, notes = kube_documents(installed(), host_port=18080)
    valid_k8s(doc)
    assert image == f"registry.example.org/team/server@{DIGEST}"
    c = container(doc)
    assert c["image"] == image and c["imagePullPolicy"] == "IfNotPresent"
    assert "command" not in c  # the image's ENTRYPOINT
    assert c["args"] == ["--host", "0.0.0.0", "--port=8000", "--price=$$5"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env == {
        "AIRGAP_SERVE_HOST": "0.0.0.0",
        "AIRGAP_SERVE_PORT": "8000",
        "URL": "http://0.0.0.0:8000/v1",
    }
    assert c["ports"] == [
        {
            "name": "http",
            "containerPort": 8000,
            "protocol": "TCP",
            "hostPort": 18080,
            "hostIP": "127.0.0.1",
        }
    ]
    assert c["startupProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 600
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert "resources" not in c
    assert c["volumeMounts"] == [{"name": "weights", "mountPath": "/models/m", "readOnly": True}]
    pod = doc["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {
            "name": "weights",
            "hostPath": {"path": "/srv/airgap/bundles/qwen2.5-7b/1.2.0/model", "type": "Directory"},
        }
    ]  # the installed version, not current
    assert "hostNetwork" not in pod and doc["spec"]["replicas"] == 1
    assert doc["metadata"]["name"] == "qwen2-5-7b"
    assert notes == []


def test_nvidia_asks_for_its_gpus() -> None:
    (doc,), _image, _notes = kube_documents(installed("nvidia", ("h100",), 8))
    valid_k8s(doc)
    assert container(doc)["resources"] == {
        "limits": {"nvidia.com/gpu": 8}, "requests": {"nvidia.com/gpu": 8}
    }  # fmt: skip


def test_ascend_asks_for_npus_and_mounts_the_driver() -> None:
    (doc,), _image, _notes = kube_documents(installed("huawei", ("ascend310p3",), 2))
    valid_k8s(doc)
    c = container(doc)
    assert c["resources"]["limits"] == {"huawei.com/Ascend310P": 2}
    mounted = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/usr/local/Ascend/driver", "/usr/local/dcmi", "/usr/local/bin/npu-smi"} <= mounted
    assert all(m["readOnly"] for m in c["volumeMounts"])
    assert "hostNetwork" not in doc["spec"]["template"]["spec"]


def test_an_ascend_target_that_spans_nodes() -> None:
    (doc,), _image, notes = kube_documents(installed("huawei", ("ascend910b3",), 8), nodes=2)
    valid_k8s(doc)
    pod = doc["spec"]["template"]["spec"]
    assert doc["spec"]["replicas"] == 2
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    paths = {v["hostPath"]["path"] for v in pod["volumes"]}
    assert {"/etc/hccn.conf", "/usr/local/Ascend/driver/tools/hccn_tool"} <= paths
    assert container(doc)["resources"]["limits"] == {"huawei.com/Ascend910": 8}
    assert any("spans 2 nodes" in n for n in notes)


def test_the_manifest_overrides_the_resource_and_hami_names_chips() -> None:
    serve = dataclasses.replace(SERVE, device_resource="huawei.com/Ascend910B3-custom")
    (doc,), _i, _n = kube_documents(installed("huawei", ("ascend910b3",), 4, serve=serve))
    assert container(doc)["resources"]["limits"] == {"huawei.com/Ascend910B3-custom": 4}
    (doc,), _i, _n = kube_documents(installed("huawei", ("ascend910b3",), 4), device_plugin="hami")
    assert container(doc)["resources"]["limits"] == {"huawei.com/Ascend910B3": 4}


def test_a_site_registry_and_an_image_without_a_manifest_digest() -> None:
    (_doc,), image, _notes = kube_documents(installed(), registry="10.0.0.5:5000")
    assert image == f"10.0.0.5:5000/team/server@{DIGEST}"
    (_doc,), image, notes = kube_documents(installed(digest=None))
    assert image == "registry.example.org/team/server:2.1"
    assert any("named by tag" in n for n in notes)


def test_a_command_replaces_the_entrypoint() -> None:
    serve = dataclasses.replace(
        SERVE, command=("/bin/sh", "-c", "exec server --port $(AIRGAP_SERVE_PORT)"), args=None
    )
    (doc,), _i, _n = kube_documents(installed(serve=serve))
    valid_k8s(doc)
    c = container(doc)
    assert c["command"] == ["/bin/sh", "-c", "exec server --port 8000"] and "args" not in c


def test_a_readiness_status_kubernetes_cannot_probe_is_noted() -> None:
    serve = dataclasses.replace(SERVE, readiness=ReadinessSpec("/health", 204, 30))
    _docs, _image, notes = kube_documents(installed(serve=serve))
    assert not any("204" in n for n in notes)
    serve = dataclasses.replace(SERVE, readiness=ReadinessSpec("/health", 503, 30))
    _docs, _image, notes = kube_documents(installed(serve=serve))
    assert any("503" in n and "200-399" in n for n in notes)


def test_no_serve_section_cannot_be_rendered() -> None:
    with pytest.raises(RenderError) as exc:
        kube_documents(installed(serve=None))
    assert "no serve section" in exc.value.message


def test_a_misspelt_field_does_not_pass_strict_validation() -> None:
    (doc,), _i, _n = kube_documents(installed())
    container(doc)["imagePullPolicyy"] = "Never"
    with pytest.raises(kubernetes_validate.ValidationError):
        valid_k8s(doc)


def test_the_yaml_reads_back_as_the_documents() -> None:
    docs, _i, _n = kube_documents(installed("huawei", ("ascend910b3",), 8), nodes=2)
    text = to_yaml(docs)
    assert "&id" not in text and "*id" not in text  # no anchors for people to untangle
    assert list(yaml.safe_load_all(text)) == json.loads(json.dumps(docs))


@pytest.mark.parametrize(
    ("text", "name"),
    [("qwen2.5-7b", "qwen2-5-7b"), ("A_B", "a-b"), ("x" * 80, "x" * 63), ("..", "airgap")],
)
def test_kubernetes_names(text: str, name: str) -> None:
    assert k8s_name(text) == name


# ---------------------------------------------------------------- compose


def test_a_compose_file() -> None:
    doc, image, notes = compose_document(installed("nvidia", ("h100",), 2), host_port=18080)
    svc = doc["services"]["server"]
    assert svc["image"] == image == f"registry.example.org/team/server@{DIGEST}"
    # the manifest's $$5 is a literal $5 (Kubernetes' rule); compose reads $$ as one $
    assert svc["command"] == ["--host", "0.0.0.0", "--port=8000", "--price=$$5"]
    assert svc["environment"]["URL"] == "http://0.0.0.0:8000/v1"
    assert svc["ports"] == ["127.0.0.1:18080:8000"]
    assert svc["volumes"][0] == {
        "type": "bind", "source": "/srv/airgap/bundles/qwen2.5-7b/1.2.0/model",
        "target": "/models/m", "read_only": True,
    }  # fmt: skip
    devices = svc["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 2, "capabilities": ["gpu"]}]
    assert any("health check" in n for n in notes)


def test_compose_for_ascend_across_nodes() -> None:
    doc, _image, _notes = compose_document(installed("huawei", ("ascend910b3",), 8), nodes=2)
    svc = doc["services"]["server"]
    assert svc["runtime"] == "ascend" and svc["environment"]["ASCEND_VISIBLE_DEVICES"] == "0-7"
    assert svc["network_mode"] == "host" and "ports" not in svc
    targets = {v["target"] for v in svc["volumes"]}
    assert {"/etc/hccn.conf", "/usr/local/Ascend/driver/tools/hccn_tool"} <= targets


def test_the_serving_user_of_serve_install_runs_the_server() -> None:
    """Files laid out 0640 for uid 1000 (serve.install) are read by a server running as it."""
    from packager.bundle.descriptor import InstallSize, ServeModes

    inst = installed("huawei", ("ascend910b3",), 8)
    d = dataclasses.replace(
        inst.descriptor, install=InstallSize(1, 1, modes=ServeModes(0o640, 0o750, 1000, 1001))
    )
    inst = dataclasses.replace(inst, descriptor=d)
    docs, _image, _notes = kube_documents(inst)
    valid_k8s(docs[0])
    assert container(docs[0])["securityContext"] == {
        "allowPrivilegeEscalation": False, "runAsUser": 1000, "runAsGroup": 1001,
    }  # fmt: skip
    doc, _image, _notes = compose_document(inst)
    assert doc["services"]["server"]["user"] == "1000:1001"
    plain, _image, _notes = kube_documents(installed())
    assert container(plain[0])["securityContext"] == {"allowPrivilegeEscalation": False}
    assert "user" not in compose_document(installed())[0]["services"]["server"]
