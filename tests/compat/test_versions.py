"""Versions and constraints as the chip stacks write them (packager/compat/versions.py).

NVIDIA: ``12.4``, ``550.54.14``. Ascend: ``24.1.rc2`` (driver), ``8.0.RC3`` (CANN),
``7.5.0.1.129`` (firmware), and Huawei's release trains: ``24.1.rc1.b030`` (a beta build, what
npu-smi prints on a beta driver) < ``24.1.rc1`` < ``24.1.rc1.1`` (a patch) < ``24.1.0``;
``8.2.RC1.alpha001`` < ``8.2.RC1``. pip: ``2.4.0.post2`` (torch_npu), ``2.4.0a1 < 2.4.0rc1``.
A release candidate sorts before its final release; missing release numbers count as zero.
"""

from __future__ import annotations

import pytest

from packager.compat.versions import Constraint, Version, VersionError


def V(text: str) -> Version:
    return Version.parse(text)


# ----------------------------------------------------------------------------- ordering

#: (lower, higher): lower < higher, strictly
ORDER = [
    # release candidates come before the final release
    ("8.0.RC3", "8.0.0", "cann-rc-before-final"),
    ("8.0.RC1", "8.0.RC3", "cann-rc1-before-rc3"),
    ("8.0.RC3", "8.0.1", "cann-rc-before-next-patch"),
    ("8.2.RC1", "8.3.RC1", "cann-rc-lines"),
    ("8.0.0", "8.1.RC1", "cann-final-before-next-minor-rc"),
    ("24.1.rc2", "24.1.0", "npu-driver-rc-before-final"),
    ("24.1.rc1", "24.1.rc2", "npu-driver-rc-numbers"),
    ("23.0.3", "24.1.rc1", "npu-driver-major"),
    ("8.0.alpha1", "8.0.beta1", "alpha-before-beta"),
    ("8.0.beta1", "8.0.RC1", "beta-before-rc"),
    ("8.0.T3", "8.0.RC1", "t-build-before-rc"),
    # NVIDIA
    ("550", "550.54.14", "driver-branch-before-release"),
    ("535.183.01", "550.54.14", "driver-branches"),
    ("550.54.14", "550.54.15", "driver-patch"),
    ("550.54.15", "550.127.05", "numeric-not-lexical"),
    ("525.60.13", "580.65.06", "driver-12x-before-13x"),
    ("12.4", "12.4.1", "cuda-patch"),
    ("12.4.1", "12.5", "cuda-minor"),
    ("12.9", "12.10", "two-digit-minor"),
    ("12.9", "13.0", "cuda-major"),
    ("9.0", "10.0", "cc-numeric"),
    # pip post releases
    ("2.4.0", "2.4.0.post2", "post-after-final"),
    ("2.4.0.post2", "2.4.0.post4", "post-numbers"),
    ("2.1.0.post10", "2.1.0.post12", "post-numeric-not-lexical"),
    ("2.4.0.post4", "2.4.1", "post-before-next-patch"),
    ("2.4.0.RC1", "2.4.0", "pip-rc-before-final"),
    # Ascend firmware: five release numbers
    ("7.5.0.1.129", "7.5.0.1.130", "firmware-build"),
    ("7.0.0", "7.5.0.1.129", "firmware-range-low"),
    ("7.5.0.1.129", "7.5.99", "firmware-range-high"),
    ("7.5.0.1.129", "7.6.0.1.220", "firmware-minor"),
    # Huawei's release trains: rc < rc.N patch < final; alpha/beta builds before what they build
    ("24.1.rc1.b030", "24.1.rc1", "beta-build-before-its-rc"),
    ("24.1.rc1.b030", "24.1.rc1.b031", "beta-build-numbers"),
    ("24.1.rc0", "24.1.rc1.b030", "beta-build-after-the-rc-before"),
    ("24.1.rc1", "24.1.rc1.1", "rc-before-its-patch"),
    ("24.1.rc2", "24.1.rc2.2", "rc2-before-rc2.2"),
    ("24.1.rc2.2", "24.1.rc2.10", "rc-patch-numeric"),
    ("24.1.rc2.2", "24.1.rc3", "rc-patch-before-next-rc"),
    ("24.1.rc3.5", "24.1.0", "rc-patch-before-final"),
    ("24.1.0", "24.1.0.1", "final-before-its-hotfix"),
    ("25.0.rc1", "25.0.rc1.1", "hdk-25.0.rc1.1"),
    ("24.1.0", "25.0.rc1.1", "hdk-trains"),
    ("8.2.RC1.alpha001", "8.2.RC1", "cann-alpha-before-its-rc"),
    ("8.2.RC1.alpha001", "8.2.RC1.alpha003", "cann-alpha-numbers"),
    ("8.2.RC1.alpha003", "8.2.RC1.beta1", "cann-alpha-before-beta"),
    ("8.1.RC1", "8.2.RC1.alpha001", "cann-alpha-after-previous-train"),
    ("8.0.RC3", "8.0.0.alpha001", "build-of-a-final-after-its-rcs"),
    ("8.0.0.alpha001", "8.0.0.beta1", "final-alpha-before-beta"),
    ("8.0.0.beta1", "8.0.0", "final-beta-before-final"),
    ("8.0.0", "8.0.0.post1", "final-before-post"),
    ("2.4.0a1", "2.4.0b1", "pep440-alpha-before-beta"),
    ("2.4.0b1", "2.4.0rc1", "pep440-beta-before-rc"),
    ("2.4.0rc1", "2.4.0", "pep440-rc-before-final"),
]


@pytest.mark.parametrize(("lower", "higher"), [c[:2] for c in ORDER], ids=[c[2] for c in ORDER])
def test_order(lower: str, higher: str) -> None:
    lo, hi = V(lower), V(higher)
    assert lo < hi
    assert hi > lo
    assert lo != hi
    assert max(lo, hi) is hi


EQUAL = [
    ("12.4", "12.4.0", "missing-numbers-are-zero"),
    ("550", "550.0.0", "bare-driver-branch"),
    ("8.0.RC3", "8.0.rc3", "rc-case-insensitive"),
    ("8.0.RC3", "8.0.0.RC3", "rc-with-zero-padding"),
    ("24.1.rc2", "24.1.RC2", "driver-rc-case"),
    ("v12.4", "12.4", "leading-v"),
    (" 12.4 ", "12.4", "surrounding-spaces"),
    ("2.4.0.post2", "2.4.post2", "post-with-zero-padding"),
    ("8.0.RC3", "8.0-RC3", "dash-separator"),
    ("24.1.rc1.b030", "24.1.RC1.B030", "build-case"),
    ("24.1.rc2.2", "24.1.0.rc2.2", "rc-patch-zero-padding"),
    ("8.2.RC1.alpha001", "8.2.rc1.alpha1", "build-leading-zeros"),
    ("24.1.rc2", "24.1.rc2.0", "rc-patch-zero"),
]


@pytest.mark.parametrize(("a", "b"), [c[:2] for c in EQUAL], ids=[c[2] for c in EQUAL])
def test_equal_versions_are_equal_and_hash_alike(a: str, b: str) -> None:
    assert V(a) == V(b)
    assert not V(a) < V(b)
    assert not V(b) < V(a)
    assert hash(V(a)) == hash(V(b))
    assert len({V(a), V(b)}) == 1


def test_sorting_a_mixed_list() -> None:
    texts = ["8.0.0", "8.0.RC3", "7.0.0", "8.0.RC1", "8.1.RC1", "8.0.1", "8.0.0.post1"]
    assert [str(v) for v in sorted(map(V, texts))] == [
        "7.0.0", "8.0.RC1", "8.0.RC3", "8.0.0", "8.0.0.post1", "8.0.1", "8.1.RC1",
    ]  # fmt: skip


PARTS = [
    ("12.4", (12, 4), None, None, "cuda"),
    ("550.54.14", (550, 54, 14), None, None, "nvidia-driver"),
    ("8.0.RC3", (8, 0), (3, 3), None, "cann-rc"),
    ("24.1.rc2", (24, 1), (3, 2), None, "npu-driver-rc"),
    ("7.5.0.1.129", (7, 5, 0, 1, 129), None, None, "firmware"),
    ("2.4.0.post2", (2, 4, 0), None, 2, "post"),
    ("2.1.0.post10", (2, 1, 0), None, 10, "post-two-digits"),
    ("1.0.post", (1, 0), None, 0, "bare-post"),
    ("1.0.rc", (1, 0), (3, 0), None, "bare-rc"),
    ("v12.4", (12, 4), None, None, "leading-v"),
]


@pytest.mark.parametrize(
    ("text", "release", "pre", "post"), [c[:4] for c in PARTS], ids=[c[4] for c in PARTS]
)
def test_parse_parts(
    text: str, release: tuple[int, ...], pre: tuple[int, int] | None, post: int | None
) -> None:
    v = V(text)
    assert v.release == release
    assert v.pre == pre
    assert v.post == post
    assert v.major == release[0]
    assert str(v) == text  # the text the user wrote, for messages


@pytest.mark.parametrize(
    ("text", "base"),
    [
        ("2.4.0.post2", "2.4.0"),
        ("8.0.RC3", "8.0"),
        ("12.4", "12.4"),
        ("7.5.0.1.129", "7.5.0.1.129"),
    ],
    ids=["post", "rc", "plain", "firmware"],
)
def test_base_drops_pre_and_post(text: str, base: str) -> None:
    b = V(text).base
    assert b == V(base)
    assert b.pre is None
    assert b.post is None


BAD_VERSIONS = [
    ("", "empty"),
    ("   ", "blank"),
    ("latest", "word"),
    ("rc1", "rc-without-release"),
    ("post2", "post-without-release"),
    ("1..2", "empty-part"),
    ("12.4.", "trailing-dot"),
    ("1.2.x", "wildcard"),
    ("1.rc1.2.3", "two-numbers-after-rc"),
    ("24.1.rc1.b030.b031", "two-builds"),
    ("8.2.RC1.alpha001.2", "number-after-a-build"),
    ("1.0.0.post1.alpha1", "build-after-post"),
    ("8.0.RC1a1", "word-glued-to-a-word"),
    ("1.post1.2", "number-after-post"),
    ("1.rc1.rc2", "two-pre-releases"),
    ("12,4", "comma"),
    (">=12.4", "operator-is-not-a-version"),
    ("v", "only-v"),
]


@pytest.mark.parametrize("text", [c[0] for c in BAD_VERSIONS], ids=[c[1] for c in BAD_VERSIONS])
def test_bad_versions_raise(text: str) -> None:
    with pytest.raises(VersionError, match="not a version"):
        V(text)


def test_version_error_is_a_value_error() -> None:
    assert issubclass(VersionError, ValueError)


def test_startswith() -> None:
    assert V("12.4.1").startswith(V("12.4"))
    assert V("12.4").startswith(V("12.4"))
    assert not V("12.40").startswith(V("12.4"))
    assert not V("12.5").startswith(V("12.4"))
    assert V("8.0.RC3").startswith(V("8.0.RC3"))
    assert not V("8.0.RC2").startswith(V("8.0.RC3"))
    assert V("24.1.rc2.2").startswith(V("24.1.rc2"))
    assert not V("24.1.rc2.2").startswith(V("24.1.rc2.3"))


HUAWEI_PARTS = [
    ("24.1.rc1.b030", (24, 1), (3, 1), None, (1, 30), "npu-smi-beta-driver"),
    ("24.1.rc2.2", (24, 1), (3, 2), 2, None, "driver-rc-patch"),
    ("25.0.rc1.1", (25, 0), (3, 1), 1, None, "hdk-25"),
    ("8.2.RC1.alpha001", (8, 2), (3, 1), None, (0, 1), "cann-alpha"),
    ("8.1.RC1.beta1", (8, 1), (3, 1), None, (1, 1), "cann-beta"),
    ("8.0.0.alpha001", (8, 0, 0), None, None, (0, 1), "cann-final-alpha"),
    ("2.4.0a1", (2, 4, 0), (0, 1), None, None, "pep440-alpha"),
]


@pytest.mark.parametrize(
    ("text", "release", "pre", "patch", "build"),
    [c[:5] for c in HUAWEI_PARTS],
    ids=[c[5] for c in HUAWEI_PARTS],
)
def test_huawei_parts(
    text: str,
    release: tuple[int, ...],
    pre: tuple[int, int] | None,
    patch: int | None,
    build: tuple[int, int] | None,
) -> None:
    v = V(text)
    assert (v.release, v.pre, v.patch, v.build) == (release, pre, patch, build)
    assert str(v) == text


# ----------------------------------------------------------------------------- constraints

#: (constraint, version, admitted)
ADMITS = [
    # a bare version is a prefix match: "12.4" is any 12.4.x
    ("12.4", "12.4", True, "bare-exact"),
    ("12.4", "12.4.0", True, "bare-zero-patch"),
    ("12.4", "12.4.1", True, "bare-admits-patch"),
    ("12.4", "12.5", False, "bare-not-next-minor"),
    ("12.4", "12.40", False, "bare-not-longer-number"),
    ("12.4", "12.3.9", False, "bare-not-older"),
    ("12", "12.9", True, "bare-major"),
    ("12", "13.0", False, "bare-major-not-next"),
    ("==12.4", "12.4.1", True, "eq-prefix"),
    ("==12.4", "12.5", False, "eq-not-next"),
    ("==2.4.0.post2", "2.4.0.post2", True, "eq-post-exact"),
    ("==2.4.0.post2", "2.4.0.post4", False, "eq-post-other"),
    ("==2.4.0.post2", "2.4.0", False, "eq-post-not-final"),
    ("8.0.RC3", "8.0.rc3", True, "eq-rc-case"),
    ("8.0.RC3", "8.0.0", False, "eq-rc-not-final"),
    ("24.1.rc2", "24.1.rc2.2", True, "bare-rc-admits-its-patch"),
    ("24.1.rc2", "24.1.rc2.b010", False, "bare-rc-not-its-beta-build"),
    ("24.1.rc2.2", "24.1.rc2", False, "rc-patch-not-the-rc"),
    ("24.1.rc2", "24.1.rc3", False, "bare-rc-not-the-next"),
    (">=24.1.rc2", "24.1.rc1.b030", False, "ge-rc-not-an-older-beta"),
    (">=24.1.rc1", "24.1.rc1.b030", False, "ge-rc-not-its-beta-build"),
    (">=24.1.rc1.b030", "24.1.rc1", True, "ge-beta-admits-its-rc"),
    (">=24.1.rc2", "24.1.rc2.2", True, "ge-rc-admits-its-patch"),
    (">=25.0.rc1", "25.0.rc1.1", True, "ge-hdk-patch"),
    (">=8.2.RC1", "8.2.RC1.alpha001", False, "ge-rc-not-its-alpha"),
    (">=8.1.RC1", "8.2.RC1.alpha001", True, "ge-older-rc-admits-next-alpha"),
    # >= <= > <
    (">=12.4", "12.4", True, "ge-equal"),
    (">=12.4", "13.0", True, "ge-admits-next-major"),
    (">=12.4", "12.3", False, "ge-older"),
    (">=8.0.0", "8.0.RC3", False, "ge-final-not-its-rc"),
    (">=8.0.RC3", "8.0.0", True, "ge-rc-admits-final"),
    (">=24.1.rc2", "24.1.0", True, "ge-driver-rc"),
    (">=550.54.14", "550.54.15", True, "ge-driver-patch"),
    (">=550.54.14", "550", False, "ge-driver-branch-below"),
    (">=550", "550.54.14", True, "ge-branch-admits-release"),
    ("<13", "12.9", True, "lt-below"),
    ("<13", "13.0", False, "lt-equal"),
    ("<13", "13.0.1", False, "lt-above"),
    ("<12.5", "12.4.1", True, "lt-patch-below"),
    ("<=12.4", "12.4.1", False, "le-is-pep440-not-a-prefix"),
    ("<=12.4", "12.5", False, "le-above"),
    (">12.4", "12.5", True, "gt-above"),
    (">12.4", "12.4", False, "gt-equal"),
    (">12.4", "12.4.1", True, "gt-admits-a-later-patch"),
    # ~= compatible release
    ("~=2.4.0", "2.4.5", True, "compat-patch"),
    ("~=2.4.0", "2.5.0", False, "compat-not-next-minor"),
    ("~=2.4.1", "2.4.0", False, "compat-below"),
    ("~=12.4", "12.9", True, "compat-minor"),
    ("~=12.4", "13.0", False, "compat-not-next-major"),
    ("~=12.4", "12.3", False, "compat-below-minor"),
    # != excludes the prefix
    ("!=12.4", "12.4.1", False, "ne-prefix"),
    ("!=12.4", "12.5", True, "ne-other"),
    ("!=2.4.0.post2", "2.4.0.post4", True, "ne-post-other"),
    # comma lists: every clause must admit
    (">=12.0,<13", "12.8", True, "range-inside"),
    (">=12.0,<13", "13.0", False, "range-upper"),
    (">=12.0,<13", "11.8", False, "range-lower"),
    (">=12.0, <13, !=12.2", "12.2.1", False, "range-with-hole"),
    (">=12.0, <13, !=12.2", "12.3", True, "range-around-hole"),
    (">=550.54.14,<600", "580.65.06", True, "driver-range"),
    (" >= 8.0.0 ", "8.1.RC1", True, "spaces"),
]


@pytest.mark.parametrize(
    ("constraint", "version", "admitted"),
    [c[:3] for c in ADMITS],
    ids=[c[3] for c in ADMITS],
)
def test_constraint_admits(constraint: str, version: str, admitted: bool) -> None:
    assert Constraint.parse(constraint).admits(V(version)) is admitted


@pytest.mark.parametrize(
    ("constraint", "version", "admitted"),
    [("12.4.0", "12.4", True), ("==550.0.0", "550", True), ("!=12.4.0", "12.4", False)],
    ids=["bare-zero-patch-admits-minor", "eq-zero-padded-driver", "ne-zero-padded"],
)
def test_constraint_admits_equal_versions(constraint: str, version: str, admitted: bool) -> None:
    assert Constraint.parse(constraint).admits(V(version)) is admitted


BAD_CONSTRAINTS = [
    ("", "empty"),
    (">=", "operator-only"),
    ("=>12.4", "swapped-operator"),
    ("12.4,", "trailing-comma"),
    (",12.4", "leading-comma"),
    ("12.4 || 12.5", "npm-or"),
    ("^12.4", "caret"),
    (">=12.4 <13", "space-instead-of-comma"),
    (">=latest", "word-version"),
    ("12.*", "wildcard"),
]


@pytest.mark.parametrize(
    "text", [c[0] for c in BAD_CONSTRAINTS], ids=[c[1] for c in BAD_CONSTRAINTS]
)
def test_bad_constraints_raise(text: str) -> None:
    with pytest.raises(VersionError):
        Constraint.parse(text)


LOWER = [
    (">=12.4", "12.4", "ge"),
    ("12.4", "12.4", "bare"),
    ("==550.54.14", "550.54.14", "eq"),
    (">535", "535", "gt"),
    ("~=2.4.0", "2.4.0", "compat"),
    (">=12.0,<13", "12.0", "range"),
    (">=8.0.RC3,>=8.0.0", "8.0.0", "tightest-of-two"),
    (">=525.60.13,!=550", "525.60.13", "ne-ignored"),
    ("<13", None, "upper-only"),
    ("<=12.4", None, "le-only"),
    ("!=12.4", None, "ne-only"),
]


@pytest.mark.parametrize(("text", "low"), [c[:2] for c in LOWER], ids=[c[2] for c in LOWER])
def test_lower_bound(text: str, low: str | None) -> None:
    got = Constraint.parse(text).lower_bound()
    if low is None:
        assert got is None
    else:
        assert got == V(low)


def test_constraint_keeps_its_text() -> None:
    c = Constraint.parse(" >=12.0,<13 ")
    assert str(c) == ">=12.0,<13"
    assert [(cl.op, str(cl.version)) for cl in c.clauses] == [(">=", "12.0"), ("<", "13")]


@pytest.mark.parametrize(
    ("text", "same_as"),
    [("2.3.1+cpu", "2.3.1"), ("2.4.0rc1", "2.4.0.rc1"), ("v12.4", "12.4")],
    ids=["pip-local-label-ignored", "pip-rc-without-dot", "leading-v"],
)
def test_pip_spellings_parse(text: str, same_as: str) -> None:
    assert V(text) == V(same_as)
