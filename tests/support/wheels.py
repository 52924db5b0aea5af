"""Real wheel files for the wheel-resolver tests, made without a compiler or a network.

``make_wheel`` writes a valid wheel by hand (PEP 427: a zip holding the package and
``NAME-VERSION.dist-info/{METADATA,WHEEL,RECORD}`` with RECORD hashes): pip reads and installs
these like any other, and a platform tag in the name plus matching ``Tag:`` lines in WHEEL make a
platform-specific wheel out of pure Python. (``pip wheel`` cannot build here: the venv's
setuptools has no ``wheel`` package for ``bdist_wheel``.) ``write_simple_index`` serves wheels as a PEP 503
index under ``file://``, so index downloads run offline.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

_EPOCH = (2020, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same inputs give the same bytes


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def wheel_filename(name: str, version: str, tag: str, build: str | None = None) -> str:
    dist = re.sub(r"[-_.]+", "_", name)
    parts = [dist, version, *([build] if build else []), tag]
    return "-".join(parts) + ".whl"


def make_wheel(
    dest: Path,
    name: str,
    version: str,
    *,
    tag: str = "py3-none-any",
    requires: Sequence[str] = (),
    requires_python: str | None = None,
    build: str | None = None,
) -> Path:
    """Write ``dest/NAME-VERSION[-BUILD]-TAG.whl`` and return its path.

    ``tag`` is the compressed ``python-abi-platform`` triple of the file name; WHEEL lists every
    tag it stands for.
    """
    dest.mkdir(parents=True, exist_ok=True)
    dist = re.sub(r"[-_.]+", "_", name)
    module = dist.lower()
    info = f"{dist}-{version}.dist-info"
    py, abi, plat = tag.split("-")
    expanded = [
        f"{p}-{a}-{t}" for p in py.split(".") for a in abi.split(".") for t in plat.split(".")
    ]
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        "Summary: a test wheel made by tests/support/wheels.py",
    ]
    if requires_python:
        metadata.append(f"Requires-Python: {requires_python}")
    metadata += [f"Requires-Dist: {r}" for r in requires]
    wheel = [
        "Wheel-Version: 1.0",
        "Generator: airgap-tests",
        f"Root-Is-Purelib: {'true' if plat == 'any' else 'false'}",
        *(f"Tag: {t}" for t in expanded),
    ]
    if build:
        wheel.append(f"Build: {build}")
    files = {
        f"{module}/__init__.py": f'"""{name} {version}"""\n\nVERSION = "{version}"\n'.encode(),
        f"{info}/METADATA": ("\n".join(metadata) + "\n").encode(),
        f"{info}/WHEEL": ("\n".join(wheel) + "\n").encode(),
    }
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in files.items()]
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = dest / wheel_filename(name, version, tag, build)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zi = zipfile.ZipInfo(path, date_time=_EPOCH)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
    return out


def write_simple_index(root: Path, wheels: Iterable[Path]) -> str:
    """A PEP 503 simple index of ``wheels`` under ``root``; returns its ``file://`` URL."""
    by_project: dict[str, list[Path]] = {}
    for w in wheels:
        project = re.sub(r"[-_.]+", "-", w.name.split("-", 1)[0]).lower()
        by_project.setdefault(project, []).append(w)
    root.mkdir(parents=True, exist_ok=True)
    links = []
    for project, files in sorted(by_project.items()):
        folder = root / project
        folder.mkdir(exist_ok=True)
        anchors = []
        for f in files:
            sha = hashlib.sha256(f.read_bytes()).hexdigest()
            url = f.resolve().as_uri() + f"#sha256={sha}"
            anchors.append(f'<a href="{html.escape(url)}">{html.escape(f.name)}</a><br/>')
        (folder / "index.html").write_text(
            "<!DOCTYPE html><html><body>\n" + "\n".join(anchors) + "\n</body></html>\n"
        )
        links.append(f'<a href="{project}/">{project}</a><br/>')
    (root / "index.html").write_text(
        "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"
    )
    return root.resolve().as_uri()
