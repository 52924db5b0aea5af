"""Versions and version constraints as the chip stacks write them.

Covers NVIDIA (``12.4``, ``550.54.14``), Ascend (``24.1.rc2``, ``8.0.RC3``, ``7.5.0.1.129``) and
Python packages (``2.4.0.post2``, ``2.4.0rc1``). Missing release numbers count as zero
(``12.4 == 12.4.0``); words are case-insensitive (``8.0.RC3 == 8.0.rc3``).

How Huawei's release trains order (Ascend HDK drivers, CANN, MindIE), oldest first::

    24.1.rc1.b030  <  24.1.rc1  <  24.1.rc1.1  <  24.1.rc2  <  24.1.rc2.2  <  24.1.0  <  24.1.0.1
    8.2.RC1.alpha001  <  8.2.RC1.alpha003  <  8.2.RC1.beta1  <  8.2.RC1
    8.0.RC3  <  8.0.0.alpha001  <  8.0.0.beta1  <  8.0.0  <  8.0.0.post1  <  8.0.1

- ``X.Y.rcK`` is a release candidate of the ``X.Y`` train: before its final ``X.Y.0``, after
  ``X.Y.rc(K-1)``.
- A number after an RC is a patch of it: ``24.1.rc2.2`` (HDK "24.1.RC2.2") comes after
  ``24.1.rc2`` and before ``24.1.rc3``.
- An ``alpha``/``beta`` (``a``/``b``) build written after an RC (``8.2.RC1.alpha001``,
  ``24.1.rc1.b030``: what npu-smi prints on a beta driver) is a build made on the way to that
  RC: before it, after the RC before it. Written after a final release of three or more numbers
  (``8.0.0.alpha001``, ``8.0.0.beta1``: CANN community builds) it is a build on the way to that
  final: after the train's RCs, before the final.
- Otherwise a pre-release word orders as in PEP 440: ``2.4.0a1 < 2.4.0b1 < 2.4.0rc1 < 2.4.0``;
  Huawei's test builds ``X.Y.T3`` come before the train's RCs.
- ``postN`` comes after what it follows (``2.4.0.post2``); a local label (``+cpu``) is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_TOKEN = re.compile(r"(\d+)|([A-Za-z]+)(\d*)")
_PRE_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "t": 2, "rc": 3}
_BUILD_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1}
#: what sorts after every alpha/beta build: the version itself
_NO_BUILD = (9, 0)


class VersionError(ValueError):
    """Text that is not a version or a constraint."""


@total_ordering
@dataclass(frozen=True)
class Version:
    text: str
    release: tuple[int, ...]
    pre: tuple[int, int] | None = None  # (rank, number): a/b/t/rc
    post: int | None = None
    patch: int | None = None  # Huawei: the N of 24.1.rc2.N, a patch of a release candidate
    build: tuple[int, int] | None = None  # Huawei: (rank, number) of an alpha/beta build

    @classmethod
    def parse(cls, text: str) -> Version:
        raw = text.strip()
        if raw[:1] in ("v", "V") and raw[1:2].isdigit():
            raw = raw[1:]
        raw = raw.split("+", 1)[0]  # a local label (2.3.1+cpu) does not order releases
        bad = VersionError(f"not a version: {text!r}")
        if not raw or not raw[0].isdigit() or raw[-1] in ".-":
            raise bad
        release: list[int] = []
        pre: tuple[int, int] | None = None
        post: int | None = None
        patch: int | None = None
        build: tuple[int, int] | None = None
        pos = 0
        while pos < len(raw):
            glued = pos > 0 and raw[pos - 1].isdigit()  # 2.4.0rc1: no separator before "rc"
            m = _TOKEN.match(raw, pos)
            if m is None:
                raise bad
            pos = m.end()
            if pos < len(raw):
                if raw[pos] in ".-":
                    pos += 1
                    if pos == len(raw) or raw[pos] in ".-":
                        raise bad
                elif not (raw[pos].isalpha() and m.group(1) is not None):
                    raise bad  # only a number may be glued to a word that follows it
            if m.group(1) is not None:
                number = int(m.group(1))
                if post is not None or build is not None:
                    raise bad
                if pre is None:
                    release.append(number)
                elif pre[0] == _PRE_RANK["rc"] and patch is None:
                    patch = number
                else:
                    raise bad
                continue
            word, digits = m.group(2).lower(), m.group(3)
            number = int(digits or 0)
            if word == "post":
                if post is not None:
                    raise bad
                post = number
            elif word in _BUILD_RANK and pre is not None and pre[0] == _PRE_RANK["rc"]:
                if build is not None or post is not None:
                    raise bad
                build = (_BUILD_RANK[word], number)  # a build of the RC before it
            elif word in _BUILD_RANK and pre is None and not glued and len(release) >= 3:
                if build is not None or post is not None:
                    raise bad
                build = (_BUILD_RANK[word], number)  # a build of the final before it
            elif word in _PRE_RANK:
                if pre is not None or post is not None or build is not None:
                    raise bad
                pre = (_PRE_RANK[word], number)
            else:
                raise bad
        if not release:
            raise bad
        return cls(text.strip(), tuple(release), pre, post, patch, build)

    def _key(
        self, width: int
    ) -> tuple[tuple[int, ...], tuple[int, int, int], int, tuple[int, int], int]:
        rel = self.release + (0,) * (width - len(self.release))
        stage = (0, *self.pre) if self.pre else (1, 0, 0)
        return (
            rel,
            stage,
            self.patch or 0,
            self.build or _NO_BUILD,
            -1 if self.post is None else self.post,
        )

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        w = max(len(self.release), len(other.release))
        return self._key(w) < other._key(w)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        w = max(len(self.release), len(other.release))
        return self._key(w) == other._key(w)

    def __hash__(self) -> int:
        rel = list(self.release)
        while rel and rel[-1] == 0:
            rel.pop()
        return hash((tuple(rel), *self._key(0)[1:]))

    def startswith(self, prefix: Version) -> bool:
        """``12.4.1`` starts with ``12.4``: the prefix's release numbers lead this one's, and
        what the prefix names after them (an RC, its patch, a build) is the same."""
        if self.release[: len(prefix.release)] != prefix.release:
            return False
        if prefix.pre is not None and prefix.pre != self.pre:
            return False
        if prefix.patch is not None and prefix.patch != self.patch:
            return False
        return prefix.build is None or prefix.build == self.build

    def in_series(self, series: Version) -> bool:
        """Whether a bare version names a series this one belongs to: ``12.4`` holds ``12.4.1``;
        a release candidate ``24.1.rc2`` holds its patches ``24.1.rc2.2`` (not the alpha/beta
        builds made before it)."""
        if series.post is not None or series.build is not None:
            return False
        if series.pre is None:
            return self.startswith(series)
        if series.patch is not None or self.build is not None:
            return False
        w = max(len(self.release), len(series.release))
        return self._key(w)[:2] == series._key(w)[:2]

    @property
    def major(self) -> int:
        return self.release[0]

    @property
    def base(self) -> Version:
        """The release without pre/post parts: ``2.4.0.post2`` -> ``2.4.0``."""
        return Version(".".join(map(str, self.release)), self.release)

    def __str__(self) -> str:
        return self.text


_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|~=|>|<)?\s*([0-9A-Za-z][0-9A-Za-z.\-]*)\s*$")


@dataclass(frozen=True)
class Clause:
    op: str
    version: Version

    def admits(self, v: Version) -> bool:
        t = self.version
        if self.op in ("==", "!="):
            # a bare release names its series: "12.4" admits 12.4.1 (and 12.4.0 admits 12.4)
            same = v == t or v.in_series(t)
            return same if self.op == "==" else not same
        if self.op == ">=":
            return v >= t
        if self.op == ">":
            return v > t
        if self.op == "<=":
            return v <= t
        if self.op == "<":
            return v < t
        # ~=X.Y[.Z]: >= X.Y[.Z] and the same leading release numbers but the last
        lead = Version(".".join(map(str, t.release[:-1])), t.release[:-1])
        return v >= t and v.startswith(lead)


@dataclass(frozen=True)
class Constraint:
    """Comma-separated clauses; a bare version means ``==`` (``12.4`` admits ``12.4.1``)."""

    text: str
    clauses: tuple[Clause, ...]

    @classmethod
    def parse(cls, text: str) -> Constraint:
        clauses = []
        for part in str(text).split(","):
            m = _CLAUSE.match(part)
            if not m:
                raise VersionError(f"not a version constraint: {text!r}")
            clause = Clause(m.group(1) or "==", Version.parse(m.group(2)))
            if clause.op == "~=" and len(clause.version.release) < 2:
                raise VersionError(f"~= needs at least two release numbers: {text!r}")
            clauses.append(clause)
        return cls(str(text).strip(), tuple(clauses))

    def admits(self, v: Version) -> bool:
        return all(c.admits(v) for c in self.clauses)

    def lower_bound(self) -> Version | None:
        """The tightest lower bound: the largest version named by a >=, >, == or ~= clause.

        None when the constraint is unbounded below.
        """
        lows = [c.version for c in self.clauses if c.op in (">=", ">", "==", "~=")]
        return max(lows) if lows else None

    def __str__(self) -> str:
        return self.text
