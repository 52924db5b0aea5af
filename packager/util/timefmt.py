"""Times as airgap writes them: RFC 3339 in UTC to the second (``2024-05-01T12:00:00Z``)."""

from __future__ import annotations

import datetime as _dt
import os
import re
import time

#: the one format of every time airgap writes (bundle.json, locks, receipts, the audit log)
RFC3339_UTC = "%Y-%m-%dT%H:%M:%SZ"
_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
UTC = _dt.timezone.utc


def format_utc(ts: float) -> str:
    """Seconds since the epoch -> ``YYYY-MM-DDTHH:MM:SSZ``."""
    return _dt.datetime.fromtimestamp(int(ts), UTC).strftime(RFC3339_UTC)


def format_datetime(when: _dt.datetime) -> str:
    """``when`` in UTC as RFC 3339 with a ``Z``; fractions of a second only if any. A naive
    datetime is refused: its meaning would depend on the host's time zone."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"a naive datetime has no time zone: {when!r}")
    utc = when.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def now_utc() -> str:
    return format_utc(time.time())


def parse_utc(text: object) -> _dt.datetime | None:
    """``YYYY-MM-DDTHH:MM:SSZ`` -> an aware datetime; None for anything else (no guessing)."""
    if not isinstance(text, str) or not _SHAPE.fullmatch(text):
        return None
    try:
        return _dt.datetime.strptime(text, RFC3339_UTC).replace(tzinfo=UTC)
    except ValueError:
        return None


def epoch_of(text: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SSZ`` -> seconds since the epoch, or None."""
    when = parse_utc(text)
    return int(when.timestamp()) if when is not None else None


def source_date_epoch() -> int | None:
    """``$SOURCE_DATE_EPOCH`` (reproducible builds): None when unset, an error when malformed."""
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde is None:
        return None
    if not sde.strip().isdigit():
        from packager.errors import InputError

        raise InputError(
            f"SOURCE_DATE_EPOCH={sde!r} is not a whole number of seconds",
            hint="e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)",
        )
    return int(sde)
