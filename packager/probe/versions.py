"""Versions and version constraints as the chip stacks write them.

Covers NVIDIA (``12.4``, ``550.54.14``), Ascend (``24.1.rc2``, ``8.0.RC3``, ``7.5.0.1.129``) and
Python packages (``2.4.0.post2``). A release candidate sorts before its final release:
``8.0.RC3 < 8.0.0`` and ``24.1.rc2 < 24.1.0``. Missing components count as zero.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_PART = re.compile(r"^(?:(\d+)|(rc|alpha|beta|a|b|t)(\d*)|(post)(\d*))$", re.IGNORECASE)
_PRE_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "t": 2, "rc": 3}


class VersionError(ValueError):
    """Text that is not a version or a constraint."""


@total_ordering
@dataclass(frozen=True)
class Version:
    text: str
    release: tuple[int, ...]
    pre: tuple[int, int] | None = None  # (rank, number)
    post: int | None = None

    @classmethod
    def parse(cls, text: str) -> Version:
        raw = text.strip()
        if raw[:1] in ("v", "V") and raw[1:2].isdigit():
            raw = raw[1:]
        raw = raw.split("+", 1)[0]  # a local label (2.3.1+cpu) does not order releases
        raw = re.sub(r"(?<=\d)(?=[A-Za-z])", ".", raw)  # pip's 2.4.0rc1 -> 2.4.0.rc1
        release: list[int] = []
        pre: tuple[int, int] | None = None
        post: int | None = None
        for part in re.split(r"[.\-]", raw) if raw else []:
            m = _PART.match(part)
            if not m:
                raise VersionError(f"not a version: {text!r}")
            if m.group(1) is not None:
                if pre is not None or post is not None:
                    raise VersionError(f"not a version: {text!r}")
                release.append(int(m.group(1)))
            elif m.group(2) is not None:
                if pre is not None:
                    raise VersionError(f"not a version: {text!r}")
                pre = (_PRE_RANK[m.group(2).lower()], int(m.group(3) or 0))
            else:
                post = int(m.group(5) or 0)
        if not release:
            raise VersionError(f"not a version: {text!r}")
        return cls(text.strip(), tuple(release), pre, post)

    def _key(self, width: int) -> tuple[tuple[int, ...], int, int, int, int]:
        rel = self.release + (0,) * (width - len(self.release))
        pre_rank, pre_num = self.pre if self.pre else (9, 0)
        return (
            rel,
            0 if self.pre else 1,
            pre_rank,
            pre_num,
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
        return hash((tuple(rel), self.pre, self.post))

    def startswith(self, prefix: Version) -> bool:
        """``12.4.1`` starts with ``12.4``: the prefix's release numbers lead this one's."""
        return self.release[: len(prefix.release)] == prefix.release and (
            prefix.pre is None or prefix.pre == self.pre
        )

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
            same = v == t or (t.pre is None and t.post is None and v.startswith(t))
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
