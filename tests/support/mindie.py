"""MindIE's documented weight-permission rule, as a pure oracle over a real tree.

MindIE refuses to load weights whose files or folders are more open than it allows, with
"Check Other group permission failed: Current permission is 4, but required no greater than 0":
each permission digit (owner, group, others) of a file at most 0640's, of a folder at most
0750's, and every entry owned by the user the server runs as. Written from that rule, not from
airgap's code, so the install tests judge airgap's layout by it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FILE_MAX = 0o640
DIR_MAX = 0o750
_DIGITS = (("Owner", 6), ("Group", 3), ("Other group", 0))


def _digit_problems(path: Path, mode: int, limit: int) -> list[str]:
    out = []
    for who, shift in _DIGITS:
        have, most = (mode >> shift) & 7, (limit >> shift) & 7
        if have & ~most:
            out.append(
                f"{path}: Check {who} permission failed: Current permission is {have}, "
                f"but required no greater than {most}"
            )
    return out


def mindie_problems(root: Path, uid: int) -> list[str]:
    """What MindIE would refuse in the weights folder ``root`` served as ``uid`` (empty: it
    loads). Links are not followed (MindIE refuses them too)."""
    out: list[str] = []
    paths = [root]
    for folder, dirs, files in os.walk(root):
        paths += [Path(folder) / n for n in (*dirs, *files)]
    for path in paths:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            out.append(f"{path}: a symbolic link")
            continue
        limit = DIR_MAX if stat.S_ISDIR(st.st_mode) else FILE_MAX
        out += _digit_problems(path, stat.S_IMODE(st.st_mode), limit)
        if st.st_uid != uid:
            out.append(f"{path}: owned by uid {st.st_uid}, the server runs as {uid}")
    return out
