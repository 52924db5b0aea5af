"""PKCS#11 URIs (RFC 7512) naming a signing key in a token: ``pkcs11:token=NAME;object=LABEL``.

Pure parsing: text in, :class:`Pkcs11Uri` out, or a :class:`Pkcs11UriError` that names the
attribute at fault. Path attributes (``;``-separated) say which token and object; query attributes
(``?``, ``&``-separated) say how to reach it. What airgap takes:

- path: ``token``, ``object``, ``id``, ``type`` (only ``private``), ``serial``, ``manufacturer``,
  ``model``, ``slot-id`` and the ``library-*`` / ``slot-*`` attributes (matched when given);
- query: ``module-path`` (the PKCS#11 library; else ``AIRGAP_PKCS11_MODULE``).

A PIN never comes from the URI: ``pin-value`` is refused (a URI is a command-line argument, and
arguments are visible to every user of the host), and so is ``pin-source``; the PIN comes from
``AIRGAP_PKCS11_PIN`` or a prompt. Values are percent-decoded (RFC 3986); an attribute given twice
is refused, as is one RFC 7512 does not define (a typo must not widen the match).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from packager.errors import InputError
from packager.findings import did_you_mean

SCHEME: Final = "pkcs11:"

PATH_ATTRIBUTES: Final = (
    "id",
    "library-description",
    "library-manufacturer",
    "library-version",
    "manufacturer",
    "model",
    "object",
    "serial",
    "slot-description",
    "slot-id",
    "slot-manufacturer",
    "token",
    "type",
)
QUERY_ATTRIBUTES: Final = ("module-name", "module-path", "pin-source", "pin-value")

# RFC 7512 pchar without "/" ";" "?" "&" "=" (those separate), or a %XX escape
_VALUE = re.compile(r"(?:[A-Za-z0-9\-._~!$'()*+,:@&/]|%[0-9A-Fa-f]{2})*")
_QVALUE = re.compile(r"(?:[A-Za-z0-9\-._~!$'()*+,:@/?|]|%[0-9A-Fa-f]{2})*")
_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")
_HINT = (
    "e.g. --key 'pkcs11:token=release;object=airgap-signing' (quote it: ';' ends a shell command)"
)


class Pkcs11UriError(InputError):
    """A ``pkcs11:`` URI that cannot name a signing key."""


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of a ``pkcs11:`` URI airgap acts on (values percent-decoded)."""

    token: str | None = None
    object: str | None = None
    id: bytes | None = None
    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    slot_id: int | None = None
    module_path: str | None = None
    #: every path attribute as given (decoded), for matching the library and slot attributes
    attributes: tuple[tuple[str, str], ...] = ()

    def display(self) -> str:
        """The URI as text for messages and reports (it never holds a PIN)."""
        parts = [
            f"id={''.join(f'%{b:02x}' for b in bytes.fromhex(v))}"
            if k == "id"
            else f"{k}={quote(v, safe='')}"
            for k, v in self.attributes
        ]
        query = f"?module-path={quote(self.module_path, safe='/')}" if self.module_path else ""
        return SCHEME + ";".join(parts) + query


def is_pkcs11_uri(text: str) -> bool:
    return text[: len(SCHEME)].lower() == SCHEME


def _decode(value: str, name: str, text: str) -> bytes:
    if not _VALUE.fullmatch(value) and not _QVALUE.fullmatch(value):
        raise Pkcs11UriError(
            f"{text!r}: the value of {name} holds characters a PKCS#11 URI must percent-encode",
            hint="write ';' as %3B, '?' as %3F, a space as %20",
        )
    return _PCT.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode("utf-8"))


def _text(raw: bytes, name: str, text: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Pkcs11UriError(f"{text!r}: {name} is not UTF-8 text once decoded") from None


def _pairs(section: str, sep: str, known: tuple[str, ...], text: str) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    for item in section.split(sep) if section else []:
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        if not eq or not name:
            raise Pkcs11UriError(f"{text!r}: {item!r} is not NAME=VALUE", hint=_HINT)
        if name not in known:
            guess = did_you_mean(name, known)
            raise Pkcs11UriError(
                f"{text!r}: unknown PKCS#11 URI attribute {name!r}"
                + (f"; {guess}" if guess else ""),
                hint="attributes: " + ", ".join(known),
            )
        if name in seen:
            raise Pkcs11UriError(
                f"{text!r}: {name} is given twice", hint="give each attribute once"
            )
        seen.add(name)
        out.append((name, _decode(value, name, text)))
    return out


def parse_pkcs11_uri(text: str) -> Pkcs11Uri:
    """The :class:`Pkcs11Uri` of ``text``; :class:`Pkcs11UriError` saying what is wrong."""
    if not is_pkcs11_uri(text):
        raise Pkcs11UriError(f"{text!r} is not a pkcs11: URI", hint=_HINT)
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise Pkcs11UriError(
            f"{text!r}: a PKCS#11 URI holds no spaces or control characters",
            hint="percent-encode them (a space is %20)",
        )
    body = text[len(SCHEME) :]
    path, _, query = body.partition("?")
    attrs = _pairs(path, ";", PATH_ATTRIBUTES, text)
    queries = dict(_pairs(query, "&", QUERY_ATTRIBUTES, text))
    if "pin-value" in queries or "pin-source" in queries:
        raise Pkcs11UriError(
            "a PIN in the pkcs11: URI is refused: command-line arguments are visible to every "
            "user of this host",
            hint="export AIRGAP_PKCS11_PIN, or run in a terminal to be prompted",
        )
    if "module-name" in queries:
        raise Pkcs11UriError(
            f"{text!r}: module-name is not supported; name the library by its path",
            hint="?module-path=/usr/lib/softhsm/libsofthsm2.so, or set AIRGAP_PKCS11_MODULE",
        )
    values = dict(attrs)
    kind = values.get("type")
    if kind is not None and kind != b"private":
        raise Pkcs11UriError(
            f"{text!r}: type={_text(kind, 'type', text)} cannot sign",
            hint="name the private key: type=private, or leave type out",
        )
    if "token" not in values and "serial" not in values:
        raise Pkcs11UriError(f"{text!r}: names no token (token=LABEL or serial=NUMBER)", hint=_HINT)
    if "object" not in values and "id" not in values:
        raise Pkcs11UriError(
            f"{text!r}: names no key in the token (object=LABEL or id=%01...)", hint=_HINT
        )
    slot_id = None
    if "slot-id" in values:
        raw = _text(values["slot-id"], "slot-id", text)
        if not raw.isdigit():
            raise Pkcs11UriError(f"{text!r}: slot-id {raw!r} is not a decimal number")
        slot_id = int(raw)

    def opt(name: str) -> str | None:
        return _text(values[name], name, text) if name in values else None

    module = queries.get("module-path")
    return Pkcs11Uri(
        token=opt("token"),
        object=opt("object"),
        id=values.get("id"),
        serial=opt("serial"),
        manufacturer=opt("manufacturer"),
        model=opt("model"),
        slot_id=slot_id,
        module_path=_text(module, "module-path", text) if module is not None else None,
        attributes=tuple((k, v.hex() if k == "id" else _text(v, k, text)) for k, v in attrs),
    )
