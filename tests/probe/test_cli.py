"""The probe's command line: bundles in every form, --report, the table, and exit 2 with one line
(never a traceback) for bad arguments and bad input."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from packager.probe import bundle as bundle_mod
from packager.probe import cli
from tests.probe.util import BUNDLES, MACHINES, probe, probe_json, validator

H100 = str(MACHINES / "h100x8-driver550")
GOOD = (BUNDLES / "cuda-h100x8.json").read_bytes()


def make_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def assert_usage_error(run_code: int, out: str, err: str, words: str) -> None:
    assert run_code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert words in lines[0], lines[0]


# ---------------------------------------------------------------- where the bundle comes from


def test_bundle_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "airgap").mkdir()
    (tmp_path / "airgap" / "bundle.json").write_bytes(GOOD)
    run = probe_json(capsys, "--sysroot", H100, "--bundle", str(tmp_path))
    assert run.code == 0
    assert run.doc["bundle"]["source"] == str(tmp_path / "airgap" / "bundle.json")
    assert run.doc["bundle"]["name"] == "qwen2.5-7b"
    assert run.doc["bundle"]["stack"]["cuda"] == "12.4"


def test_bundle_tar_is_read_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tar = make_tar(
        tmp_path / "b.airgap.tar",
        {"oci-layout": b"{}", "./airgap/bundle.json": GOOD, "blobs/sha256/ab": b"x" * 100},
    )
    run = probe_json(capsys, "--sysroot", H100, "--bundle", str(tar))
    assert run.code == 0
    assert run.doc["bundle"]["source"] == str(tar)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.airgap.tar"]  # nothing extracted


def test_a_delta_names_its_versions_content_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A delta's bundle.json is its version's plus a ``delta`` record: the probe reports the
    version's content digest (what `airgap digest` says of the delta and of the full bundle)."""
    from packager.bundle.descriptor import content_bytes
    from packager.util.jsonio import pretty_json

    doc = json.loads(GOOD)
    full = pretty_json(doc)  # as airgap build writes a descriptor
    record = {"base": {"name": "qwen2.5-7b", "version": "0.9.0", "digest": "sha256:" + "a" * 64},
              "not_carried": [], "not_carried_files": []}  # fmt: skip
    delta = pretty_json({**doc, "delta": record})
    assert content_bytes(delta) == full  # the build's invariant, which the probe follows
    digests = []
    for name, data in (("full", full), ("delta", delta)):
        tar = make_tar(tmp_path / f"{name}.airgap.tar", {"airgap/bundle.json": data})
        run = probe_json(capsys, "--sysroot", H100, "--bundle", str(tar))
        digests.append(run.doc["bundle"]["digest"])
    assert digests == ["sha256:" + hashlib.sha256(full).hexdigest()] * 2


def test_installed_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta = tmp_path / "bundles" / "qwen" / "current" / ".airgap"
    meta.mkdir(parents=True)
    (meta / "bundle.json").write_bytes(GOOD)
    run = probe_json(capsys, "--sysroot", H100, "--installed", "qwen", "--prefix", str(tmp_path))
    assert run.code == 0
    assert run.doc["bundle"]["source"].endswith("bundles/qwen/current/.airgap/bundle.json")


def test_unknown_keys_are_ignored_and_nulls_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {"future": [1, 2], "bundle": {"name": "x", "extra": True}, "target": None, "install": {}}
    f = tmp_path / "bundle.json"
    f.write_text(json.dumps(doc))
    run = probe_json(capsys, "--sysroot", H100, "--bundle", str(f))
    assert run.code == 0
    assert [c["id"] for c in run.doc["checks"]] == ["nvidia.smi", "nvidia.devices"]


BAD_BUNDLES: list[tuple[bytes, str]] = [
    (b"{not json", "not JSON"),
    (b"\xff\xfe\x00", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (
        json.dumps({"target": {"accelerator": {"count": "eight"}}}).encode(),
        "count must be a non-negative integer",
    ),
    (
        json.dumps({"target": {"accelerator": {"count": -1}}}).encode(),
        "count must be a non-negative integer",
    ),
    (json.dumps({"target": {"accelerator": {"vendor": "amd"}}}).encode(), "vendor 'amd'"),
    (json.dumps({"target": {"accelerator": {"chips": "h100"}}}).encode(), "chips must be a list"),
    (json.dumps({"target": {"stack": {"driver": ">=banana!"}}}).encode(), "target.stack.driver"),
    (json.dumps({"target": {"stack": {"cuda": ["12.4"]}}}).encode(), "target.stack.cuda"),
    (json.dumps({"target": "linux/amd64"}).encode(), "target must be an object"),
    (json.dumps({"install": {"bytes": 1.5}}).encode(), "install.bytes"),
    (json.dumps({"kernels": {"a": 1}}).encode(), "kernels must be a list"),
    (json.dumps({"smoke": "yes"}).encode(), "smoke must be an object"),
    # found by tests/support/fuzz: each was a TypeError or a RecursionError before
    (json.dumps({"blobs": 18446744073709551616}).encode(), "blobs must be a list"),
    (
        json.dumps({"blobs": [{"digest": "sha256:" + "0" * 64, "paths": 7}]}).encode(),
        "paths must be a list",
    ),
    (json.dumps({"images": -1}).encode(), "images must be a list"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"a": ' * 70 + b"1" + b"}" * 70, "nested deeper than 64 levels"),
    (b'{"bundle": {"name": "\\ud800"}}', "not valid Unicode"),
    (b'{"kernels": [], "kernels": []}', "given twice"),
    (b'{"install": {"bytes": NaN}}', "NaN is not a JSON number"),
    # a delta's content digest re-renders its bundle.json: infinity would not go back out
    (b'{"delta": {}, "install": {"ratio": 1e400}}', "1e400 is too large to be a number"),
    (b'{"install": {"bytes": ' + b"9" * 5000 + b"}}", "not JSON"),
    (
        json.dumps({"blobs": [{"digest": "sha256:../../etc/passwd", "paths": ["k"]}]}).encode(),
        "is not a sha256 digest",
    ),
]


@pytest.mark.parametrize(("content", "words"), BAD_BUNDLES, ids=[w for _, w in BAD_BUNDLES])
def test_bad_bundle_json(
    content: bytes, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bundle.json"
    f.write_bytes(content)
    run = probe(capsys, "--sysroot", H100, "--bundle", str(f), "--json")
    assert_usage_error(run.code, run.out, run.err, words)


def test_bad_bundles_as_folder_and_tar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (tmp_path / "missing", "no such bundle"),
        (tmp_path, "not a bundle folder"),
        (make_tar(tmp_path / "other.tar", {"README": b"hi"}), "no airgap/bundle.json in this tar"),
        (tmp_path / "garbage.tar", "not a readable tar"),
    ]
    (tmp_path / "garbage.tar").write_bytes(b"\x00garbage" * 100)
    for path, words in cases:
        run = probe(capsys, "--sysroot", H100, "--bundle", str(path))
        assert_usage_error(run.code, run.out, run.err, words)


def test_descriptor_size_is_bounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle_mod, "MAX_DESCRIPTOR", 100)
    tar = make_tar(tmp_path / "big.tar", {"airgap/bundle.json": b" " * 200 + b"{}"})
    run = probe(capsys, "--sysroot", H100, "--bundle", str(tar))
    assert_usage_error(run.code, run.out, run.err, "larger than 16 MiB")
    f = tmp_path / "bundle.json"
    f.write_bytes(b" " * 200 + b"{}")
    run = probe(capsys, "--sysroot", H100, "--bundle", str(f))
    assert_usage_error(run.code, run.out, run.err, "larger than 16 MiB")


def test_tar_member_that_is_not_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tar = tmp_path / "link.tar"
    with tarfile.open(tar, "w") as tf:
        info = tarfile.TarInfo("airgap/bundle.json")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    run = probe(capsys, "--sysroot", H100, "--bundle", str(tar))
    assert_usage_error(run.code, run.out, run.err, "not a regular file")


# ---------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["--bundle"], "expected one argument"),
        (["--bundle", "a", "--installed", "b"], "not allowed with argument"),
        (["--sysroot", "x", "--record", "y"], "not allowed with argument"),
        (["--timeout", "0"], "--timeout must be more than 0"),
        (["--timeout", "soon"], "invalid float value"),
        (["--sysroot", "/nonexistent/machine"], "no such folder"),
        (["--installed", "qwen", "--prefix", "/nonexistent/prefix"], "no such folder"),
    ],
)
def test_usage_errors(args: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    run = probe(capsys, *args)
    assert_usage_error(run.code, run.out, run.err, words)
    assert run.err.startswith("airgap probe: error: ")


def test_sysroot_that_is_not_a_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = probe(capsys, "--sysroot", str(tmp_path))
    assert_usage_error(run.code, run.out, run.err, "not a recorded machine")


def test_installed_bundle_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = probe(capsys, "--sysroot", H100, "--installed", "qwen", "--prefix", str(tmp_path))
    assert_usage_error(run.code, run.out, run.err, "no installed bundle 'qwen'")


def test_record_refuses_a_folder_with_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x").write_text("x")
    run = probe(capsys, "--record", str(tmp_path))
    assert_usage_error(run.code, run.out, run.err, "not an empty folder")


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    run = probe(capsys, "--help")
    assert run.code == 0
    assert "--sysroot" in run.out and "--record" in run.out and "--installed" in run.out
    run = probe(capsys, "--version")
    assert run.code == 0
    assert run.out.startswith("airgap probe ")


def test_internal_error_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cli, "run_checks", boom)
    run = probe(capsys, "--sysroot", H100, "--json")
    assert_usage_error(run.code, run.out, run.err, "internal error: RuntimeError: kaboom")


def test_a_detector_that_crashes_becomes_a_not_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from packager.probe import detect

    def boom(*_: object, **__: object) -> None:
        raise ValueError("unexpected layout")

    monkeypatch.setattr(detect, "detect_ascend", boom)
    run = probe_json(capsys, "--sysroot", str(MACHINES / "ascend910b3x8-cann80"))
    err = run.check("probe.error")
    assert err["status"] == "NOT RUN"
    assert err["reason"] == "Ascend detection failed: ValueError: unexpected layout"
    assert run.code == 3


# ---------------------------------------------------------------- output


def test_report_file_is_the_same_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    run = probe(
        capsys,
        "--sysroot",
        H100,
        "--bundle",
        str(BUNDLES / "cuda-h100x8.json"),
        "--report",
        str(report),
    )
    assert run.code == 0
    doc = json.loads(report.read_text())
    validator().validate(doc)
    assert "Result: PASS" in run.out  # the table on stdout, the JSON in the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # no temporary left
    run = probe(capsys, "--sysroot", H100, "--report", str(tmp_path / "missing" / "r.json"))
    assert_usage_error(run.code, run.out, run.err, "cannot write")


def test_json_stdout_is_only_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    run = probe(capsys, "--sysroot", H100, "--json")
    json.loads(run.out)
    assert run.err == ""


HOSTILE = "evil\x1b[2J\u202e\x9b\x07"


def test_a_bundles_text_cannot_act_on_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bundle's name and chips are printed with control and bidi characters escaped."""
    doc = json.loads(GOOD)
    doc["bundle"]["name"] = HOSTILE
    doc["target"]["accelerator"]["chips"] = ["h100" + HOSTILE]
    f = tmp_path / "bundle.json"
    f.write_text(json.dumps(doc))
    run = probe(capsys, "--sysroot", H100, "--bundle", str(f))
    assert run.code == 1
    assert "evil\\x1b[2J\\u202e\\x9b\\x07" in run.out
    assert all(c == "\n" or c.isprintable() for c in run.out + run.err)


def test_table(capsys: pytest.CaptureFixture[str]) -> None:
    run = probe(
        capsys,
        "--sysroot",
        str(MACHINES / "a100-driver470"),
        "--bundle",
        str(BUNDLES / "cuda-a100x4.json"),
    )
    assert run.code == 1
    out = run.out
    assert "NVIDIA    4 x NVIDIA A100-SXM4-40GB (a100, cc 8.0, 39.6 GiB); driver 470.182.03" in out
    assert "  FAIL     CUDA vs driver" in out
    assert "-> install driver >= 550.54.14 (found 470.182.03)" in out
    assert out.rstrip().endswith("Result: FAIL (1 failed, 1 warnings, 0 not run, 8 passed)")
    assert "\x1b[" not in out


def test_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert probe(capsys, "--sysroot", H100, "--bundle", str(BUNDLES / "cuda-h100x8.json")).code == 0
    assert (
        probe(capsys, "--sysroot", H100, "--bundle", str(BUNDLES / "cuda-h200x4-cuda13.json")).code
        == 1
    )
    assert (
        probe(capsys, "--sysroot", H100, "--bundle", str(BUNDLES / "cuda-h100x4-images.json")).code
        == 3
    )


def test_without_facts_chip_checks_do_not_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from packager.probe import chipfacts

    # no facts.json beside the probe and no airgap package: the probe still runs
    monkeypatch.setattr(chipfacts, "FACTS_FILE", "no-such-facts.json")
    monkeypatch.setitem(__import__("sys").modules, "packager.compat.probe_facts", None)
    run = probe(
        capsys,
        "--sysroot",
        H100,
        "--bundle",
        str(BUNDLES / "cuda-h100x8.json"),
        "--json",
        with_facts=False,
    )
    doc = json.loads(run.out)
    assert doc["probe"]["facts"] == "none"
    checks = {c["id"]: c["status"] for c in doc["checks"]}
    assert checks["accelerator.chips"] == "NOT RUN"
    assert checks["nvidia.cuda"] == "NOT RUN"
    assert run.code == 3
