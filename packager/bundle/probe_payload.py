"""What a bundle carries at ``airgap/probe/``: the stdlib-only probe and the facts it reads.

The build stage embeds :func:`probe_payload`; ``python3 BUNDLE/airgap/probe --bundle BUNDLE``
then runs on the site with any Python >= 3.8 before airgap is installed.
"""

from __future__ import annotations

import json
from importlib import resources

from packager.compat.probe_facts import export_probe_facts


def facts_json() -> bytes:
    """``facts.json``: the chip facts, in a canonical form (sorted keys, fixed separators)."""
    text = json.dumps(export_probe_facts(), indent=1, sort_keys=True, ensure_ascii=True)
    return (text + "\n").encode("utf-8")


def probe_payload() -> dict[str, bytes]:
    """File name -> content for ``airgap/probe/``: every ``.py`` of ``packager.probe`` (sorted by
    name; the kernel runner's modules included when present) and ``facts.json``. The same
    source tree gives the same bytes."""
    root = resources.files("packager.probe")
    files: dict[str, bytes] = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith(".py"):
            files[entry.name] = entry.read_bytes()
    files["facts.json"] = facts_json()
    return dict(sorted(files.items()))
