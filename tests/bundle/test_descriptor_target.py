"""The descriptor's target: `nodes` and `accelerator.mig` are optional, written only when they
differ from a one-node, whole-GPU deployment, so single-node descriptors keep their bytes."""

from __future__ import annotations

import dataclasses
import json

import pytest

from packager.bundle.descriptor import (
    AcceleratorSpec,
    DescriptorError,
    descriptor_bytes,
    parse_descriptor,
)
from packager.probe.bundle import parse_requirements
from tests.support.descriptors import make_descriptor


def with_target(nodes: int = 1, mig: bool = False) -> bytes:
    d = make_descriptor(target="cuda")
    target = dataclasses.replace(
        d.target,
        accelerator=AcceleratorSpec("nvidia", ("h200",), 8, 40 * 10**9, mig),
        nodes=nodes,
    )
    return descriptor_bytes(dataclasses.replace(d, target=target))


def test_one_node_whole_gpus_writes_neither_key() -> None:
    doc = json.loads(with_target())
    assert "nodes" not in doc["target"] and "mig" not in doc["target"]["accelerator"]
    parsed = parse_descriptor(with_target())
    assert parsed.target.nodes == 1 and parsed.target.accelerator.mig is False


def test_two_nodes_and_mig_round_trip() -> None:
    raw = with_target(nodes=2, mig=True)
    doc = json.loads(raw)
    assert doc["target"]["nodes"] == 2 and doc["target"]["accelerator"]["mig"] is True
    parsed = parse_descriptor(raw)
    assert parsed.target.nodes == 2 and parsed.target.accelerator.mig is True
    assert descriptor_bytes(parsed) == raw
    req = parse_requirements(raw, "bundle.json")
    assert (req.nodes, req.mig) == (2, True)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda d: d["target"].update(nodes=1), "nodes"),
        (lambda d: d["target"].update(nodes="2"), "nodes"),
        (lambda d: d["target"]["accelerator"].update(mig=False), "mig"),
    ],
    ids=["nodes-1-is-written-as-absent", "nodes-a-string", "mig-false-is-written-as-absent"],
)
def test_the_schema_refuses_other_spellings(edit: object, words: str) -> None:
    doc = json.loads(with_target(nodes=2, mig=True))
    edit(doc)  # type: ignore[operator]
    with pytest.raises(DescriptorError, match=words):
        parse_descriptor(json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("target", "words"),
    [({"nodes": 0}, "target.nodes must be at least 1"), ({"nodes": -1}, "target.nodes")],
)
def test_the_probe_refuses_bad_nodes(target: dict[str, object], words: str) -> None:
    from packager.probe.bundle import BundleError

    doc = {"target": {"accelerator": {"vendor": "nvidia"}, **target}}
    with pytest.raises(BundleError, match=words):
        parse_requirements(json.dumps(doc).encode(), "b.json")
