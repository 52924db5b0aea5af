"""`airgap repair`'s decisions (packager.site.repair_rules): what is wrong at a path, where its
content may come from, and which bundle.json a version is judged by."""

from __future__ import annotations

import pytest

from packager.site.receipts import InstalledFile
from packager.site.repair_rules import (
    ABSENT,
    Fix,
    Seen,
    Source,
    judge_path,
    pick_source,
    trusted_descriptor,
)

A, B = "a" * 64, "b" * 64
BLOB = InstalledFile("model/w.bin", A, 10, True)
META = InstalledFile(".airgap/sbom.cdx.json", A, 10, False)
GOOD = Seen("file", 10, 0o444, A)


@pytest.mark.parametrize(
    ("seen", "fix", "why"),
    [
        (GOOD, Fix.NONE, "intact"),
        (ABSENT, Fix.RESTORE, "missing"),
        (Seen("symbolic link"), Fix.RESTORE, "a symbolic link now"),
        (Seen("dir"), Fix.RESTORE, "a folder now"),
        (Seen("device"), Fix.RESTORE, "a device now"),
        (Seen("file", 11, 0o444, None), Fix.RESTORE, "11 bytes, installed 10"),
        (Seen("file", 10, 0o444, B), Fix.RESTORE, "sha256 bbbbbbbbbbbbbbbb..., installed"),
        (Seen("file", 10, 0o444, None), Fix.RESTORE, "unreadable, installed"),
        (Seen("file", 10, 0o644, A), Fix.MODE, "mode 0644, installed 0444"),
        (Seen("file", 10, 0o4444, A), Fix.MODE, "mode 4444, installed 0444"),
        # other content and another mode: the content is restored (the mode with it)
        (Seen("file", 10, 0o644, B), Fix.RESTORE, "sha256 bbbb"),
    ],
)
def test_judge_path(seen: Seen, fix: Fix, why: str) -> None:
    verdict = judge_path(BLOB, seen, 0o444)
    assert verdict.fix is fix
    assert why in verdict.why


@pytest.mark.parametrize(
    ("want", "store", "installed", "in_bundle", "source"),
    [
        (BLOB, GOOD, False, False, Source.STORE),
        (BLOB, GOOD, True, True, Source.STORE),  # the store first
        (BLOB, Seen("file", 10, 0o644, A), False, False, Source.STORE),  # a mode is no damage
        (BLOB, Seen("file", 10, 0o444, B), True, True, Source.INSTALLED),
        (BLOB, Seen("symbolic link"), True, False, Source.INSTALLED),
        (BLOB, ABSENT, False, True, Source.BUNDLE),
        (BLOB, Seen("file", 11, 0o444, None), False, True, Source.BUNDLE),
        (BLOB, ABSENT, False, False, Source.NONE),
        # .airgap/ files are no blobs: only from the bundle, whatever the store holds
        (META, GOOD, True, False, Source.NONE),
        (META, GOOD, True, True, Source.BUNDLE),
    ],
)
def test_pick_source(
    want: InstalledFile, store: Seen, installed: bool, in_bundle: bool, source: Source
) -> None:
    assert pick_source(want, store, installed, in_bundle) is source


D1, D2, D3 = (f"sha256:{c * 64}" for c in "123")


@pytest.mark.parametrize(
    ("logged", "installed", "bundle", "source", "why"),
    [
        ({D1}, D1, None, Source.INSTALLED, "is the one installed"),
        (set(), D1, None, Source.INSTALLED, "is the one installed"),  # no log entry yet
        ({D1}, D1, D2, Source.INSTALLED, "is the one installed"),
        ({D1}, D2, None, Source.NONE, f"edited (now {D2})"),
        ({D1}, None, None, Source.NONE, "missing"),
        ({D1}, D2, D1, Source.BUNDLE, "edited"),
        ({D1}, None, D1, Source.BUNDLE, "missing"),
        ({D1}, D2, D3, Source.NONE, f"the bundle given is {D3}, not the installed {D1}"),
        # an edited receipt: nothing it says is taken, whatever else agrees with it
        ({D2}, D1, D1, Source.NONE, "the receipt was edited"),
        ({D2, D3}, D1, None, Source.NONE, "the receipt was edited"),
    ],
)
def test_trusted_descriptor(
    logged: set[str], installed: str | None, bundle: str | None, source: Source, why: str
) -> None:
    t = trusted_descriptor(D1, frozenset(logged), installed, bundle)
    assert t.source is source
    assert why in t.why
