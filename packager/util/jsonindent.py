"""``json.dumps(obj, indent=N, ...)`` byte for byte, several times faster.

CPython's C encoder does not indent (until 3.14): with ``indent`` every value goes through the
pure-Python generator encoder, which dominates writing a lock or a descriptor of 50,000 files.
This encoder joins strings instead, and leaves strings to the C escaper; what it does not know
(a type json would hand to ``default``) falls back to :func:`json.dumps` itself, so its output is
always json's own.
"""

from __future__ import annotations

import json
import json.encoder
import math
from collections.abc import Callable
from json.encoder import encode_basestring, encode_basestring_ascii  # the C versions
from typing import Any

#: types whose values the C encoder writes exactly as the Python one does (subclasses, such as
#: enums, take the slow path)
_SCALARS = frozenset({str, int, float, bool, type(None)})
_KEYS = frozenset({str})


class _Unknown(Exception):
    """A value json.dumps would treat in a way this encoder does not copy."""


def _refuse(o: Any) -> Any:
    raise _Unknown


def dumps(
    obj: Any,
    *,
    indent: int = 2,
    sort_keys: bool = False,
    ensure_ascii: bool = True,
    allow_nan: bool = True,
) -> str:
    """``json.dumps(obj, indent=indent, sort_keys=..., ensure_ascii=..., allow_nan=...)``."""
    try:
        return _encode(obj, indent, sort_keys, ensure_ascii, allow_nan)
    except _Unknown:
        return json.dumps(
            obj, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii, allow_nan=allow_nan
        )


def _encode(obj: Any, indent: int, sort_keys: bool, ensure_ascii: bool, allow_nan: bool) -> str:
    string: Callable[[str], str] = encode_basestring_ascii if ensure_ascii else encode_basestring
    pads: list[str] = ["\n"]

    def number(o: float) -> str:
        if o != o or o in (math.inf, -math.inf):
            if not allow_nan:
                raise ValueError("Out of range float values are not JSON compliant: " + repr(o))
            return "NaN" if o != o else ("Infinity" if o > 0 else "-Infinity")
        return float.__repr__(o)

    # a container of scalars only is encoded by C in one call, its items joined by ",\0" (json
    # escapes every control character inside strings: a raw NUL is always a separator)
    c_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_encoder is None:
        raise _Unknown  # json without its C part: json.dumps itself
    one = c_encoder(None, _refuse, string, None, ": ", ",\0", sort_keys, False, allow_nan)

    def flat(o: Any, level: int) -> str:
        text = "".join(one(o, 0))
        inner = pads[level + 1]
        return text[0] + inner + text[1:-1].replace("\0", inner) + pads[level] + text[-1]

    def value(o: Any, level: int) -> str:
        t = type(o)
        if t is str:
            return string(o)
        if t is dict or t is list or t is tuple:
            if not o:
                return "{}" if t is dict else "[]"
            while len(pads) <= level + 1:
                pads.append("\n" + " " * (indent * len(pads)))
            inner = pads[level + 1]
            if t is dict:
                if _SCALARS.issuperset(map(type, o.values())) and _KEYS.issuperset(map(type, o)):
                    return flat(o, level)
                parts = []
                for k, v in sorted(o.items()) if sort_keys else o.items():
                    if type(k) is not str and not isinstance(k, str):
                        raise _Unknown  # json turns int/float/bool/None keys into strings
                    parts.append(string(k) + ": " + value(v, level + 1))
                return "{" + inner + ("," + inner).join(parts) + pads[level] + "}"
            if _SCALARS.issuperset(map(type, o)):
                return flat(o, level)
            items = ("," + inner).join([value(v, level + 1) for v in o])
            return "[" + inner + items + pads[level] + "]"
        if isinstance(o, str):
            return string(o)
        if o is None:
            return "null"
        if o is True:
            return "true"
        if o is False:
            return "false"
        if isinstance(o, int):
            return int.__repr__(o)
        if isinstance(o, float):
            return number(o)
        raise _Unknown  # a subclass of dict, list or tuple, or what json hands to ``default``

    return value(obj, 0)
