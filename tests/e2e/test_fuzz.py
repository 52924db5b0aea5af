"""Structure-aware fuzzing of every document airgap reads, CI-sized (tests/support/fuzz).

Mutated bundle descriptors (signature kept, and signed again), parts indexes, manifests, trust
policies, receipts and audit logs go through the real CLI entry in two worker processes. The bar:
no internal error, no hang, no changed descriptor, parts index or audit log accepted, no file
damaged, no control character on the terminal. ``python scripts/bench.py fuzz`` runs the same at
length; ``--replay KIND:SEED:NUMBER`` reruns one case alone.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.support.fuzz.mutate import mutate, same_json
from tests.support.fuzz.runner import CaseId, CliRun, Summary, classify, plan, run_fuzz
from tests.support.fuzz.targets import KINDS, Context, Prepared, build_fixtures
from tests.support.golden import FIXTURE

#: cases in the CI run, over all kinds by weight (about a minute on two cores)
CASES = 2000
SEED = 20250101


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> Summary:
    result = run_fuzz(
        plan(CASES, SEED, list(KINDS)), workers=2, work=tmp_path_factory.mktemp("fuzz")
    )
    print(result.report(lambda c: f"python scripts/bench.py fuzz --replay {c}"))
    return result


#: kinds whose remaining failures at this seed lie in code being rewritten for the same issue
#: (packager/bundle, commands, cli, site, signing): run and reported, not yet required
IN_PROGRESS: set[str] = set()


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(k, marks=pytest.mark.xfail(strict=False, reason="hardening in progress"))
        if k in IN_PROGRESS
        else k
        for k in KINDS
    ],
)
def test_no_mutated_document_crashes_hangs_or_is_accepted(summary: Summary, kind: str) -> None:
    mine = [o for o in summary.outcomes if o.case.kind == kind]
    assert mine, f"no {kind} cases ran"
    failures = [
        f"{o.status} {o.case} {o.label}: {o.site or ''} {o.error}" for o in mine if o.status != "OK"
    ]
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_the_untouched_inputs_survive_every_case(summary: Summary) -> None:
    assert len(summary.outcomes) == CASES
    assert not summary.canary_failures
    assert not summary.fixtures_damaged


# ------------------------------------------------------------------------------ the fuzzer itself


def test_a_case_is_reproducible_from_its_name() -> None:
    raw = (FIXTURE / "golden.yaml").read_bytes()
    case = CaseId.parse("manifest:7:123")
    assert str(case) == "manifest:7:123"
    first = mutate(raw, case.rng(), yaml_mode=True)
    assert first == mutate(raw, CaseId.parse(str(case)).rng(), yaml_mode=True)
    assert first != mutate(raw, CaseId("manifest", 7, 124).rng(), yaml_mode=True)


def test_the_mutations_cover_every_class_the_issue_names(tmp_path: Path) -> None:
    fixtures = build_fixtures(tmp_path / "fx")
    raw = (fixtures.layout / "airgap/bundle.json").read_bytes()
    ops = " ".join(" ".join(mutate(raw, random.Random(i)).ops) for i in range(600))
    for name in ("retype", "number", "string", "tweak", "digest", "path", "delete",
                 "duplicate-name", "rename", "add-name", "list-swap", "deep", "long", "graft",
                 "swap", "text:dup-line", "text:control", "bytes:invalid-utf8"):  # fmt: skip
        assert name in ops, name
    manifest = (FIXTURE / "golden.yaml").read_bytes()
    ops = " ".join(
        " ".join(mutate(manifest, random.Random(i), yaml_mode=True).ops) for i in range(600)
    )
    for name in ("alias", "alias-bomb", "merge-key", "yaml-key", "tag", "yaml-scalar", "text:tab",
                 "text:directive", "text:second-doc", "bytes:bom"):  # fmt: skip
        assert name in ops, name


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (b'{"a": 1, "b": [1, 2]}', b'{"b":[1,2],"a":1}', True),
        (b'{"a": 1}', b'{"a": 1.0}', False),
        (b'{"a": 1}', b'{"a": true}', False),
        (b'{"a": 1}', b'{"a": 1, "a": 1}', False),
        (b'{"a": [{}]}', b'{"a": [[]]}', False),
        (b'{"a": 1}', b'{"a": 1', False),
    ],
)
def test_documents_are_compared_as_typed_data(a: bytes, b: bytes, same: bool) -> None:
    assert same_json(a, b) is same


def _prep(*, judged: bool = False, changed: bool = True) -> Prepared:
    from tests.support.fuzz.mutate import Mutant

    return Prepared(["verify"], "verify --key", "d", Mutant(b"", ()), changed, judged)


@pytest.mark.parametrize(
    ("run", "judged", "status"),
    [
        (CliRun(1, b"FAIL [signatures] x\n", b"", None), True, "OK"),
        (CliRun(0, b"verified\n", b"", None), True, "ACCEPTED"),
        (CliRun(0, b"verified\n", b"", None), False, "OK"),
        (CliRun(2, b"", b"error: \x1b[2J here\n", None), False, "ESCAPE"),
        (CliRun(2, b"", "error: \u202e here\n".encode(), None), False, "ESCAPE"),
        (CliRun(2, b"", "error: \x9b2J\n".encode(), None), False, "ESCAPE"),
        (CliRun(2, b"", b"error: a\tb\n  hint: c\n", None), False, "OK"),
        (CliRun(70, b"", b"internal error: KeyError: 'x'\n", None), False, "INTERNAL"),
        (CliRun(2, b"", b"airgap probe: internal error: TypeError\n", None), False, "INTERNAL"),
        (CliRun(1, b"", b"", None), False, "SILENT"),
        (CliRun(70, b"", b"", KeyError("x")), False, "INTERNAL"),
    ],
)
def test_outcomes_are_classified(run: CliRun, judged: bool, status: str) -> None:
    assert classify(_prep(judged=judged), run, None)[0] == status


def test_a_crash_is_named_by_its_innermost_packager_line(tmp_path: Path) -> None:
    from tests.support.fuzz.runner import crash_site

    try:
        from packager.bundle import layout

        layout.blob_path("sha256:nope")
    except ValueError as exc:
        site, error = crash_site(exc)
    assert site.startswith("packager/bundle/layout.py:")
    assert error.startswith("ValueError: not a sha256 digest")


def test_a_context_rewrites_the_golden_tar_with_one_member_replaced(tmp_path: Path) -> None:
    import tarfile

    ctx = Context(build_fixtures(tmp_path / "fx"))
    out = tmp_path / "t.tar"
    ctx.write_tar(out, {"airgap/bundle.json": b"{}"})
    with tarfile.open(out) as tf, tarfile.open(ctx.fx.tar) as orig:
        assert tf.getnames() == orig.getnames()
        assert tf.extractfile("airgap/bundle.json").read() == b"{}"  # type: ignore[union-attr]
