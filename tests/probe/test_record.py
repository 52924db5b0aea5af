"""`--record DIR` captures this machine in the sysroot format; `--sysroot DIR` replays it to the
same report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from packager.probe.system import COMMANDS
from tests.probe.util import BUNDLES, probe, probe_json

VOLATILE = ("created", "source")


def stable(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in VOLATILE}


def test_record_this_machine_and_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = tmp_path / "rec"
    bundle = str(BUNDLES / "cuda-h100x4-images.json")
    live = probe_json(capsys, "--record", str(rec), "--prefix", str(tmp_path), "--bundle", bundle)
    assert f"recorded this machine in {rec}" in live.err
    assert live.doc["source"] == {"mode": "live", "sysroot": None}
    # the layout
    machine = json.loads((rec / "machine.json").read_text())
    assert machine["format"] == "airgap-sysroot/1"
    assert machine["uname"]["machine"]
    assert machine["disk"]["path"] == str(tmp_path)
    assert (rec / "env.json").is_file()
    assert (rec / "dev.list").read_text().startswith("# airgap dev.list")
    assert (rec / "proc" / "meminfo").is_file()
    assert (rec / "proc" / "cpuinfo").is_file()
    assert any((rec / "etc").glob("os-release")) or (rec / "usr/lib/os-release").is_file()
    recorded = sorted(p.stem for p in (rec / "commands").glob("*.json"))
    assert set(recorded) <= set(COMMANDS)
    assert "nvidia-smi" in recorded and "docker-version" in recorded
    for p in (rec / "commands").glob("*.json"):
        assert set(json.loads(p.read_text())) == {
            "argv",
            "rc",
            "stdout",
            "stderr",
            "timeout",
            "error",
        }
    assert stable(json.loads((rec / "report.json").read_text())) == stable(live.doc)
    # the replay gives the same report
    replay = probe_json(
        capsys, "--sysroot", str(rec), "--prefix", str(tmp_path), "--bundle", bundle
    )
    assert replay.doc["source"] == {"mode": "sysroot", "sysroot": str(rec)}
    assert stable(replay.doc) == stable(live.doc)
    assert replay.code == live.code


def test_record_into_an_empty_folder_and_table_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = tmp_path / "empty"
    rec.mkdir()
    run = probe(capsys, "--record", str(rec), "--no-bundle")
    assert run.code in (0, 1, 3)
    assert "Result:" in run.out
    assert (rec / "machine.json").is_file()


def test_recording_keeps_what_was_only_looked_for(tmp_path: Path) -> None:
    from packager.probe.system import RecordingSystem, SysrootSystem

    present = tmp_path / "runtime-binary"
    present.write_bytes(b"\x7fELF" + b"\x00" * 64)
    text = tmp_path / "version.info"
    text.write_text("Version=24.1.0\n")
    rec = RecordingSystem(timeout=5)
    assert rec.exists(str(present))
    assert not rec.exists(str(tmp_path / "absent"))
    assert rec.read_text(str(text)) == "Version=24.1.0\n"
    out = tmp_path / "rec"
    rec.save(str(out))
    replay = SysrootSystem(str(out))
    assert replay.exists(str(present))
    assert not replay.exists(str(tmp_path / "absent"))
    assert replay.read_text(str(text)) == "Version=24.1.0\n"
    assert replay.read_text(str(present)) != present.read_text(errors="replace")  # not copied
    assert replay.run("npu-smi").error == "not found"  # never run: reads as not installed


def test_recording_keeps_what_was_globbed(tmp_path: Path) -> None:
    from packager.probe.system import RecordingSystem, SysrootSystem

    lib = tmp_path / "lib" / "libnvidia-ml.so.550.127.05"
    lib.parent.mkdir()
    lib.write_bytes(b"\x7fELF")
    rec = RecordingSystem(timeout=5)
    assert rec.glob(str(tmp_path / "lib" / "libnvidia-ml.so.*.*")) == [str(lib)]
    out = tmp_path / "rec"
    rec.save(str(out))
    replay = SysrootSystem(str(out))
    assert replay.glob(str(tmp_path / "lib" / "libnvidia-ml.so.*.*")) == [str(lib)]


def test_commands_by_name_and_per_device() -> None:
    from packager.probe.system import command_argv, device_command

    assert command_argv("npu-smi") == ["npu-smi", "info"]
    assert command_argv(device_command("hccn-ip", 3)) == ["hccn_tool", "-i", "3", "-ip", "-g"]
    assert command_argv("hccn-tls.12") == ["hccn_tool", "-i", "12", "-tls", "-g"]
    for bad in ("hccn-ip", "hccn-ip.x", "hccn-ip.-1", "rm.1", "hccn-ip.123456", "../npu-smi"):
        with pytest.raises(KeyError):
            command_argv(bad)


def test_a_command_an_older_probe_never_ran_is_unknown_not_missing(tmp_path: Path) -> None:
    from packager.probe.system import SysrootSystem
    from tests.probe.util import MACHINES

    old = SysrootSystem(str(MACHINES / "h100x8-driver550"))
    res = old.run("nvidia-smi-query")
    assert res.error == "not found" and res.recorded is False
    assert old.run("nvidia-smi").recorded is True
    # an older recording's 6-field query is read by its own argv
    assert "mig.mode.current" not in old.run("nvidia-smi").argv[1]
