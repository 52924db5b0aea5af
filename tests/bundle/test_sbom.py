"""airgap/sbom.cdx.json: CycloneDX 1.6 from a lock, checked against the official 1.6 JSON schema."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from packageurl import PackageURL

from packager.bundle.sbom import SPDX_IDS, build_sbom, image_purl, sbom_bytes, wheel_purl
from packager.errors import InputError
from packager.oci.reference import parse_reference
from packager.resolve.lockfile import (
    Lock,
    LockedFile,
    LockedImage,
    LockedKernel,
    LockedModel,
    LockedTarget,
    LockedWheel,
    SafetensorsSummary,
)
from tests.support.sbom_schema import (
    _load,
    assert_valid_cyclonedx_16,
    cyclonedx_16_validator,
    format_checker,
    schema_errors,
)

COMMIT = "a09a35458c702b33eeacc393d103063234e8bc28"
TIMESTAMP = "2024-05-01T12:00:00Z"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def digest(text: str) -> str:
    return "sha256:" + sha(text)


# ============================================================================ locks by hand

WEIGHTS = (
    LockedFile("model-00001-of-00002.safetensors", sha("w1"), 4_000_000_000, "weight"),
    LockedFile("model-00002-of-00002.safetensors", sha("w2"), 3_200_000_000, "weight"),
    LockedFile("config.json", sha("config"), 663, "config"),
    LockedFile("tokenizer.json", sha("tok"), 7_031_645, "tokenizer"),
    LockedFile("1_Pooling/config.json", sha("pool"), 190, "config"),
)
SUMMARY = SafetensorsSummary(tensors=339, parameters=7_615_616_512, dtypes={"BF16": 7_615_616_512})

HF_MODEL = LockedModel(
    "Qwen/Qwen2.5-7B-Instruct",
    "safetensors",
    {"huggingface": "Qwen/Qwen2.5-7B-Instruct", "revision": "main", "commit": COMMIT},
    WEIGHTS,
    SUMMARY,
)
LOCAL_MODEL = LockedModel(
    "acme/minilm",
    "safetensors",
    {"path": "./weights"},
    (
        LockedFile("model.safetensors", sha("minilm"), 90_868_376, "weight"),
        LockedFile("vocab.txt", sha("vocab"), 231_508, "tokenizer"),
    ),
    SafetensorsSummary(tensors=101, parameters=22_713_216, dtypes={"F32": 22_713_216, "I64": 512}),
)

BUSYBOX = LockedImage(
    ref="docker.io/library/busybox:1.36",
    source="registry",
    platform="linux/amd64",
    config_digest=digest("busybox-config"),
    size=2_155_000,
    manifest_digest=digest("busybox-manifest"),
    index_digest=digest("busybox-index"),
    media_type="application/vnd.oci.image.manifest.v1+json",
    layers=(digest("busybox-layer"),),
)
MINDIE = LockedImage(
    ref="swr.cn-south-1.myhuaweicloud.com/ascendhub/mindie:2.1.RC1-800I-A2-py311-openeuler24.03-lts",
    source="registry",
    platform="linux/arm64",
    config_digest=digest("mindie-config"),
    size=18_000_000_000,
    manifest_digest=digest("mindie-manifest"),
    media_type="application/vnd.docker.distribution.manifest.v2+json",
    layers=(digest("l1"), digest("l2"), digest("l3")),
)
ENGINE_IMAGE = LockedImage(  # from a Docker engine, never pushed: no manifest digest
    ref="airgap-test/busybox:local",
    source="docker",
    platform="linux/amd64",
    config_digest=digest("engine-config"),
    size=1_000_000,
)

WHEELS = (
    LockedWheel(
        "torch_npu-2.1.0.post10-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "torch-npu",
        "2.1.0.post10",
        sha("torch_npu"),
        12_000_000,
        ("cp311-cp311-manylinux_2_17_aarch64", "cp311-cp311-manylinux2014_aarch64"),
    ),
    LockedWheel(
        "numpy-1.26.4-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "numpy",
        "1.26.4",
        sha("numpy"),
        14_000_000,
        ("cp311-cp311-manylinux_2_17_aarch64",),
    ),
    LockedWheel(
        "torch-2.4.0+cpu-cp311-cp311-linux_aarch64.whl",
        "torch",
        "2.4.0+cpu",
        sha("torch"),
        90_000_000,
        ("cp311-cp311-linux_aarch64",),
    ),
)
KERNELS = (
    LockedKernel(
        "rmsnorm",
        "cuda-fatbin",
        LockedFile("kernels/rmsnorm.fatbin", sha("rmsnorm"), 52_000),
        (
            LockedFile("kernels/tests/x.npy", sha("x.npy"), 4224),
            LockedFile("kernels/tests/expected.npy", sha("expected.npy"), 4224),
        ),
    ),
    LockedKernel("add", "ascendc", LockedFile("kernels/add.o", sha("add"), 9_000)),
)
FILES = (
    LockedFile(
        "drivers/Ascend-hdk-910b-npu-driver_24.1.rc2_linux-aarch64.run",
        sha("driver"),
        400_000_000,
        dest="drivers/Ascend-hdk-910b-npu-driver_24.1.rc2_linux-aarch64.run",
    ),
    LockedFile("conf/serving.json", sha("serving"), 1_200, dest="etc/mindie/serving.json"),
)

FULL_TARGET = LockedTarget(
    id="ascend",
    platform="linux/arm64",
    images=(BUSYBOX, MINDIE),
    wheels=WHEELS,
    python="3.11",
    files=FILES,
    kernels=KERNELS,
)


def make_lock(model: LockedModel, *targets: LockedTarget) -> Lock:
    return Lock(
        manifest_name="qwen2.5-7b-ascend",
        manifest_version="1.2.0",
        manifest_digest=digest("manifest"),
        tool="airgap 0.1.0",
        created=TIMESTAMP,
        model=model,
        targets=targets,
    )


HF_LOCK = make_lock(HF_MODEL, FULL_TARGET, LockedTarget(id="cuda", platform="linux/amd64"))
LOCAL_LOCK = make_lock(LOCAL_MODEL, LockedTarget(id=None, platform="linux/amd64"))


def sbom(lock: Lock = HF_LOCK, target_id: str | None = "ascend", **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "bundle_name": "qwen2.5-7b-ascend",
        "bundle_version": "1.2.0",
        "serial_seed": digest("lock"),
        "timestamp": TIMESTAMP,
        "tool_version": "0.1.0",
        "model_license": "apache-2.0",
        "precision": "bf16",
        "chips": ("ascend910b3",),
        "accelerator_vendor": "huawei",
    }
    args.update(kw)
    return build_sbom(lock, target_id, **args)


def walk(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for c in components:
        yield c
        yield from walk(c.get("components", []))


def by_ref(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in walk(doc["components"])}


def props(component: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in component.get("properties", [])}


# ============================================================================ the schema


def test_the_validator_is_the_official_schema_and_checks_formats() -> None:
    schema: Any = cyclonedx_16_validator().schema
    assert schema["$id"] == "http://cyclonedx.org/schema/bom-1.6.schema.json"
    assert (
        "machine-learning-model" in schema["definitions"]["component"]["properties"]["type"]["enum"]
    )
    # formats, SPDX ids ($ref to spdx.schema.json) and JSF signatures ($ref to jsf) really checked
    bad = sbom()
    bad["metadata"]["timestamp"] = "1 May 2024"
    bad["components"][0]["licenses"] = [{"license": {"id": "Not-A-License"}}]
    bad["components"][0]["externalReferences"][0]["url"] = "https://huggingface.co/a b"
    bad["components"][1]["hashes"][0]["content"] = "xyz"
    bad["signature"] = {"algorithm": "ES256"}
    paths = {e.split(":")[0] for e in schema_errors(bad)}
    assert paths == {
        "metadata/timestamp",
        "components/0/licenses",
        "components/0/externalReferences/0/url",
        "components/1/hashes/0/content",
        "signature",
    }


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("https://huggingface.co/Qwen/Qwen2.5-7B-Instruct/tree/" + COMMIT, True),
        ("https://例え.jp/モデル?版=1#節", True),
        ("../relative/ref", True),
        ("urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#comp", True),
        ("https://huggingface.co/a b", False),
        ("https://[::1/x", False),
        ("http://h/%zz", False),
    ],
)
def test_iri_reference_format_is_checked(value: str, valid: bool) -> None:
    assert format_checker().conforms(value, "iri-reference") is valid


def test_known_spdx_ids_are_in_the_schemas_spdx_list() -> None:
    _, spdx = _load("spdx.schema.json", "spdx.SNAPSHOT.schema.json")
    assert sorted(SPDX_IDS - set(spdx["enum"])) == []


# ============================================================================ documents


def test_hf_model_full_target_is_valid_cyclonedx_16() -> None:
    doc = sbom()
    assert_valid_cyclonedx_16(doc)
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6" and doc["version"] == 1
    assert doc["metadata"]["timestamp"] == TIMESTAMP
    assert doc["metadata"]["tools"] == {
        "components": [{"type": "application", "name": "airgap", "version": "0.1.0"}]
    }
    bundle = doc["metadata"]["component"]
    assert (bundle["type"], bundle["name"], bundle["version"]) == (
        "application",
        "qwen2.5-7b-ascend",
        "1.2.0",
    )
    assert props(bundle) | {"airgap:accelerator:chip": "ascend910b3"} == {
        "airgap:bundle:target": "ascend",
        "airgap:bundle:platform": "linux/arm64",
        "airgap:bundle:python": "3.11",
        "airgap:bundle:manifest-digest": digest("manifest"),
        "airgap:accelerator:vendor": "huawei",
        "airgap:accelerator:chip": "ascend910b3",
    }
    types = [c["type"] for c in doc["components"]]
    assert types == ["machine-learning-model"] + ["container"] * 2 + ["library"] * 3 + ["file"] * 4


def test_hf_model_component() -> None:
    model = sbom()["components"][0]
    assert model["type"] == "machine-learning-model"
    assert model["name"] == "Qwen/Qwen2.5-7B-Instruct"
    assert model["version"] == COMMIT
    assert model["purl"] == f"pkg:huggingface/Qwen/Qwen2.5-7B-Instruct@{COMMIT}"
    assert model["externalReferences"][0]["url"] == (
        f"https://huggingface.co/Qwen/Qwen2.5-7B-Instruct/tree/{COMMIT}"
    )
    assert model["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert props(model) == {
        "airgap:model:source": "huggingface",
        "airgap:model:repository": "Qwen/Qwen2.5-7B-Instruct",
        "airgap:model:revision": "main",
    }
    assert props(model["modelCard"]) == {
        "airgap:model:format": "safetensors",
        "airgap:model:precision": "bf16",
        "airgap:model:size": str(HF_MODEL.size),
        "airgap:model:files": "5",
        "airgap:model:parameters": "7615616512",
        "airgap:model:tensors": "339",
        "airgap:model:dtype:BF16": "7615616512",
    }
    parsed = PackageURL.from_string(model["purl"])
    assert (parsed.type, parsed.namespace, parsed.name, parsed.version) == (
        "huggingface",
        "Qwen",
        "Qwen2.5-7B-Instruct",
        COMMIT,
    )


@pytest.mark.parametrize(("lock", "target"), [(HF_LOCK, "ascend"), (LOCAL_LOCK, None)])
def test_every_model_file_is_a_nested_file_with_its_sha256(lock: Lock, target: str | None) -> None:
    doc = sbom(lock, target)
    model = doc["components"][0]
    nested = {c["name"]: c for c in model["components"]}
    assert set(nested) == {f.path for f in lock.model.files}
    for f in lock.model.files:
        c = nested[f.path]
        assert c["type"] == "file"
        assert c["hashes"] == [{"alg": "SHA-256", "content": f.sha256}]
        assert props(c) == {"airgap:file:role": str(f.role), "airgap:size": str(f.size)}
    all_hashes = {h["content"] for c in walk(doc["components"]) for h in c.get("hashes", [])}
    assert {f.sha256 for f in lock.model.files} <= all_hashes


def test_local_folder_model_is_valid_and_has_no_purl_or_version() -> None:
    doc = sbom(
        LOCAL_LOCK, None, model_license=None, precision=None, chips=(), accelerator_vendor=None
    )
    assert_valid_cyclonedx_16(doc)
    model = doc["components"][0]
    assert model["name"] == "acme/minilm"
    for absent in ("version", "purl", "licenses", "externalReferences"):
        assert absent not in model
    assert props(model) == {"airgap:model:source": "local"}
    assert "./weights" not in json.dumps(doc)  # build-host paths stay out
    card = props(model["modelCard"])
    assert card["airgap:model:dtype:F32"] == "22713216" and card["airgap:model:dtype:I64"] == "512"
    assert "airgap:model:precision" not in card
    assert props(doc["metadata"]["component"]) == {
        "airgap:bundle:platform": "linux/amd64",
        "airgap:bundle:manifest-digest": digest("manifest"),
    }


def test_empty_target_is_valid_and_the_bundle_depends_on_the_model_only() -> None:
    doc = sbom(HF_LOCK, "cuda", chips=("h100", "h200"), accelerator_vendor="nvidia")
    assert_valid_cyclonedx_16(doc)
    assert [c["type"] for c in doc["components"]] == ["machine-learning-model"]
    assert doc["dependencies"] == [{"ref": "bundle", "dependsOn": ["model"]}]
    chips = [
        p["value"]
        for p in doc["metadata"]["component"]["properties"]
        if p["name"] == "airgap:accelerator:chip"
    ]
    assert chips == ["h100", "h200"]


def test_images() -> None:
    refs = by_ref(sbom())
    busybox = refs["image:docker.io/library/busybox:1.36"]
    assert busybox["type"] == "container"
    assert (busybox["name"], busybox["version"]) == ("docker.io/library/busybox", "1.36")
    assert busybox["hashes"] == [{"alg": "SHA-256", "content": sha("busybox-manifest")}]
    assert props(busybox) == {
        "airgap:image:ref": BUSYBOX.ref,
        "airgap:image:source": "registry",
        "airgap:image:platform": "linux/amd64",
        "airgap:image:manifest-digest": digest("busybox-manifest"),
        "airgap:image:manifest-media-type": "application/vnd.oci.image.manifest.v1+json",
        "airgap:image:index-digest": digest("busybox-index"),
        "airgap:image:config-digest": digest("busybox-config"),
        "airgap:image:layers": "1",
        "airgap:size": "2155000",
    }
    mindie = refs[f"image:{MINDIE.ref}"]
    assert mindie["name"] == "swr.cn-south-1.myhuaweicloud.com/ascendhub/mindie"
    assert mindie["version"] == "2.1.RC1-800I-A2-py311-openeuler24.03-lts"
    assert "airgap:image:index-digest" not in props(mindie)


def test_an_image_without_a_manifest_digest_has_no_purl_or_hash() -> None:
    lock = make_lock(
        HF_MODEL, LockedTarget(id=None, platform="linux/amd64", images=(ENGINE_IMAGE,))
    )
    doc = sbom(lock, None)
    assert_valid_cyclonedx_16(doc)
    image = doc["components"][1]
    assert (image["name"], image["version"]) == ("docker.io/airgap-test/busybox", "local")
    assert "purl" not in image and "hashes" not in image
    assert props(image)["airgap:image:config-digest"] == digest("engine-config")


PURLS = [
    (
        "docker.io/library/busybox:1.36",
        "linux/amd64",
        "pkg:oci/busybox@sha256:{d}?arch=amd64&repository_url=docker.io/library/busybox&tag=1.36",
    ),
    (
        "busybox",
        "linux/arm64/v8",
        "pkg:oci/busybox@sha256:{d}?arch=arm64&repository_url=docker.io/library/busybox&tag=latest",
    ),
    (
        "swr.cn-south-1.myhuaweicloud.com/ascendhub/mindie:2.1.RC1-800I-A2-py311-openeuler24.03-lts",
        "linux/arm64",
        "pkg:oci/mindie@sha256:{d}?arch=arm64"
        "&repository_url=swr.cn-south-1.myhuaweicloud.com/ascendhub/mindie"
        "&tag=2.1.RC1-800I-A2-py311-openeuler24.03-lts",
    ),
    (
        "127.0.0.1:5000/a/b:v1",
        "linux/amd64",
        "pkg:oci/b@sha256:{d}?arch=amd64&repository_url=127.0.0.1:5000/a/b&tag=v1",
    ),
    (  # by digest only (an index digest): the purl names the platform's manifest, with no tag
        f"registry.example.com/team/server@{digest('server-index')}",
        "linux/arm64",
        "pkg:oci/server@sha256:{d}?arch=arm64&repository_url=registry.example.com/team/server",
    ),
    (
        f"localhost:5000/Team_x/model-server:v2@{digest('pinned')}",
        "linux/amd64",
        "pkg:oci/model-server@sha256:{d}?arch=amd64"
        "&repository_url=localhost:5000/team_x/model-server&tag=v2",
    ),
]


@pytest.mark.parametrize(("ref", "platform", "expected"), PURLS)
def test_image_purls(ref: str, platform: str, expected: str) -> None:
    if "Team_x" in ref:  # references are lowercase: the resolver refuses this one
        with pytest.raises(InputError):
            parse_reference(ref)
        ref = ref.replace("Team_x", "team_x")
    manifest = digest(f"manifest of {ref}")
    want = expected.format(d=sha(f"manifest of {ref}"))
    assert image_purl(parse_reference(ref), manifest, platform) == want
    # the same purl in a document, and read back by packageurl-python (the reference parser)
    image = LockedImage(ref, "registry", platform, digest("cfg"), 1, manifest_digest=manifest)
    lock = make_lock(HF_MODEL, LockedTarget(id=None, platform=platform, images=(image,)))
    doc = sbom(lock, None)
    assert_valid_cyclonedx_16(doc)
    assert doc["components"][1]["purl"] == want
    parsed = PackageURL.from_string(want)
    assert parsed.type == "oci" and parsed.namespace is None
    assert parsed.version == manifest
    assert parsed.name == parse_reference(ref).repository.rsplit("/", 1)[-1]
    assert parsed.qualifiers["arch"] == platform.split("/")[1]
    assert parsed.qualifiers["repository_url"] in want
    assert parsed.qualifiers.get("tag") == parse_reference(ref).tag


@pytest.mark.parametrize(
    ("wheel", "expected"),
    [
        (
            WHEELS[0],
            "pkg:pypi/torch-npu@2.1.0.post10?file_name="
            "torch_npu-2.1.0.post10-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        ),
        (
            WHEELS[2],
            "pkg:pypi/torch@2.4.0%2Bcpu?file_name=torch-2.4.0%2Bcpu-cp311-cp311-linux_aarch64.whl",
        ),
        (
            LockedWheel("Foo_Bar-1.0-py3-none-any.whl", "Foo_Bar", "1.0", sha("f"), 1, ()),
            "pkg:pypi/foo-bar@1.0?file_name=Foo_Bar-1.0-py3-none-any.whl",
        ),
    ],
)
def test_wheel_purls(wheel: LockedWheel, expected: str) -> None:
    assert wheel_purl(wheel) == expected
    parsed = PackageURL.from_string(expected)
    assert parsed.type == "pypi" and parsed.version == wheel.version
    assert parsed.qualifiers == {"file_name": wheel.filename}
    assert parsed.to_dict() == PackageURL.from_string(parsed.to_string()).to_dict()


def test_wheels_kernels_and_files() -> None:
    doc = sbom()
    refs = by_ref(doc)
    for w in WHEELS:
        c = refs[f"wheel:{w.filename}"]
        assert (c["type"], c["name"], c["version"]) == ("library", w.name, w.version)
        assert c["purl"] == wheel_purl(w)
        assert c["hashes"] == [{"alg": "SHA-256", "content": w.sha256}]
        assert props(c)["airgap:wheel:tags"] == ",".join(w.tags)
    rms = refs["kernel:rmsnorm"]
    assert (rms["type"], rms["name"]) == ("file", "rmsnorm")
    assert rms["hashes"] == [{"alg": "SHA-256", "content": sha("rmsnorm")}]
    assert props(rms) == {
        "airgap:kernel:kind": "cuda-fatbin",
        "airgap:file:path": "kernels/rmsnorm.fatbin",
        "airgap:size": "52000",
    }
    tests = {c["name"]: c for c in rms["components"]}
    assert set(tests) == {"kernels/tests/x.npy", "kernels/tests/expected.npy"}
    assert tests["kernels/tests/x.npy"]["hashes"][0]["content"] == sha("x.npy")
    assert props(tests["kernels/tests/x.npy"])["airgap:file:role"] == "kernel-test"
    assert "components" not in refs["kernel:add"]
    driver = refs[f"file:{FILES[0].dest}"]
    assert driver["type"] == "file"
    assert driver["name"] == "Ascend-hdk-910b-npu-driver_24.1.rc2_linux-aarch64.run"
    assert driver["hashes"] == [{"alg": "SHA-256", "content": sha("driver")}]
    assert props(refs["file:etc/mindie/serving.json"]) == {
        "airgap:file:path": "conf/serving.json",
        "airgap:file:dest": "etc/mindie/serving.json",
        "airgap:size": "1200",
    }


def test_bom_refs_are_unique_and_the_bundle_depends_on_everything_top_level() -> None:
    # the same image twice and a kernel named like a file: refs stay unique
    target = LockedTarget(
        id=None,
        platform="linux/arm64",
        images=(MINDIE, MINDIE),
        kernels=(LockedKernel("add", "ascendc", LockedFile("add.o", sha("a"), 1)),) * 2,
    )
    for doc in (sbom(), sbom(make_lock(HF_MODEL, target), None)):
        assert_valid_cyclonedx_16(doc)
        all_refs = [c["bom-ref"] for c in walk([doc["metadata"]["component"], *doc["components"]])]
        assert len(all_refs) == len(set(all_refs))
        top = [c["bom-ref"] for c in doc["components"]]
        assert doc["dependencies"] == [{"ref": "bundle", "dependsOn": top}]
    assert top == [
        "model",
        f"image:{MINDIE.ref}",
        f"image:{MINDIE.ref}#2",
        "kernel:add",
        "kernel:add#2",
    ]


def test_an_independent_reader_reads_it() -> None:
    """cyclonedx-python-lib (the OWASP library) loads the document; purls re-serialize unchanged."""
    from cyclonedx.model.bom import Bom

    doc = sbom()
    bom = Bom.from_json(doc)  # type: ignore[attr-defined]
    assert str(bom.serial_number) == doc["serialNumber"].removeprefix("urn:uuid:")
    assert bom.metadata.component is not None and bom.metadata.component.name == "qwen2.5-7b-ascend"
    read = {str(c.bom_ref): c for c in bom.components}
    assert set(read) == {c["bom-ref"] for c in doc["components"]}
    for c in doc["components"]:
        other = read[c["bom-ref"]]
        assert str(other.type) == c["type"] or other.type.value == c["type"]
        assert [h.content for h in other.hashes] == [h["content"] for h in c.get("hashes", [])]
        if "purl" in c:
            assert other.purl is not None and other.purl.to_string() == c["purl"]
    assert len(read["model"].components) == len(HF_MODEL.files)
    (dep,) = bom.dependencies
    assert {str(d.ref) for d in dep.dependencies} == set(read)


# ============================================================================ determinism


def test_same_inputs_same_bytes() -> None:
    a, b = sbom_bytes(sbom()), sbom_bytes(sbom())
    assert a == b
    assert a.endswith(b"}\n") and a.count(b"\n  ") > 10  # indented, final newline
    doc = json.loads(a)
    assert doc == sbom()
    assert list(doc) == sorted(doc)
    assert uuid.UUID(doc["serialNumber"].removeprefix("urn:uuid:")).version == 5


def test_serial_number_follows_the_seed_the_target_and_the_content() -> None:
    serial = sbom()["serialNumber"]
    assert serial.startswith("urn:uuid:")
    assert sbom()["serialNumber"] == serial
    assert sbom(serial_seed="another lock")["serialNumber"] != serial
    assert sbom(tool_version="0.2.0")["serialNumber"] != serial
    assert sbom(HF_LOCK, "cuda")["serialNumber"] != serial


def test_no_clock_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime
    import time

    def no_clock(*_: object) -> float:
        raise AssertionError("the SBOM read the clock")

    monkeypatch.setattr(time, "time", no_clock)
    monkeypatch.setattr(time, "time_ns", no_clock)
    monkeypatch.setattr(datetime, "datetime", None)
    doc = sbom(timestamp="2030-01-02T03:04:05.5+08:00")
    assert doc["metadata"]["timestamp"] == "2030-01-02T03:04:05.5+08:00"
    assert_valid_cyclonedx_16(doc)


# ============================================================================ licenses and errors


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("apache-2.0", [{"license": {"id": "Apache-2.0"}}]),
        ("MIT", [{"license": {"id": "MIT"}}]),
        ("cc-by-nc-4.0", [{"license": {"id": "CC-BY-NC-4.0"}}]),
        ("Apache-2.0 OR mit", [{"expression": "Apache-2.0 OR MIT"}]),
        (
            "(mit and bsd-3-clause) or apache-2.0",
            [{"expression": "(MIT AND BSD-3-Clause) OR Apache-2.0"}],
        ),
        ("llama3.1", [{"license": {"name": "llama3.1"}}]),
        (
            "Tongyi Qianwen LICENSE AGREEMENT",
            [{"license": {"name": "Tongyi Qianwen LICENSE AGREEMENT"}}],
        ),
        (
            "Apache-2.0 WITH LLVM-exception",
            [{"license": {"name": "Apache-2.0 WITH LLVM-exception"}}],
        ),
        ("MIT Apache-2.0", [{"license": {"name": "MIT Apache-2.0"}}]),
        ("MIT OR", [{"license": {"name": "MIT OR"}}]),
        ("(MIT OR Apache-2.0", [{"license": {"name": "(MIT OR Apache-2.0"}}]),
        ("((MIT))", [{"license": {"name": "((MIT))"}}]),
        ("((MIT) OR (Apache-2.0))", [{"expression": "((MIT) OR (Apache-2.0))"}]),
    ],
)
def test_model_license(given: str, expected: list[dict[str, Any]]) -> None:
    doc = sbom(model_license=given)
    assert doc["components"][0]["licenses"] == expected
    assert_valid_cyclonedx_16(doc)


def test_unknown_target_and_bad_inputs_are_input_errors() -> None:
    with pytest.raises(InputError, match="no target 'rocm'"):
        sbom(target_id="rocm")
    with pytest.raises(InputError, match="RFC 3339"):
        sbom(timestamp="2024-05-01 12:00:00")
    bad = make_lock(
        HF_MODEL,
        LockedTarget(id=None, platform="linux/amd64", files=(LockedFile("x", "not-a-hash", 1),)),
    )
    with pytest.raises(InputError, match="not a SHA-256"):
        sbom(bad, None)
