"""FHIR ``date``, ``dateTime``, ``instant`` and ``Period`` values as UTC ranges.

R4 §3.1.1.4.2 (search.html#date): "the date parameter format is yyyy-mm-ddThh:mm:ss[Z|(+|-)
hh:mm] ... each value has an implicit range": ``2000`` is all of the year 2000, ``2000-04``
all of April, ``2000-04-04T10:00`` the whole minute. A Period is the range from its start to
its end; a missing bound is open. We store and compare ranges as half-open ``[low, high)``
of fixed-width UTC strings, so SQL compares them as plain text on every backend.

A value without a time zone (a date, or a time the client wrote without one) is taken as
UTC: the spec leaves it to the server's local zone, and the realm's servers run in UTC."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

# The lowest and highest instants: open Period bounds and clamped overflow.
MIN_INSTANT = "0001-01-01T00:00:00.000000Z"
MAX_INSTANT = "9999-12-31T23:59:59.999999Z"

_VALUE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?$")


@dataclass(frozen=True)
class DateRange:
    low: str    # inclusive, as format_instant
    high: str   # exclusive


def format_instant(moment: datetime) -> str:
    """Fixed-width UTC text (``%Y`` is not zero-padded for years < 1000 on every libc)."""
    m = moment.astimezone(UTC)
    return (f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:"
            f"{m.second:02d}.{m.microsecond:06d}Z")


def parse_range(text: str) -> DateRange:
    """The implicit range of a FHIR date/dateTime/instant; ValueError if it is not one."""
    match = _VALUE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a FHIR date or dateTime")
    parts = match.groupdict()
    start = _start(parts)
    end = _end(start, parts)
    return DateRange(_clamped(start), _clamped(end))


def period_range(period: Mapping[str, Any]) -> DateRange | None:
    """A Period's range: from its start's low to its end's high, open where missing."""
    start, end = period.get("start"), period.get("end")
    low = parse_range(start).low if isinstance(start, str) else MIN_INSTANT
    high = parse_range(end).high if isinstance(end, str) else MAX_INSTANT
    if start is None and end is None:
        return None
    return DateRange(low, high)


def _start(parts: dict[str, str | None]) -> datetime:
    zone = _zone(parts["zone"])
    return datetime(int(parts["year"] or 0), int(parts["month"] or 1), int(parts["day"] or 1),
                    int(parts["hour"] or 0), int(parts["minute"] or 0),
                    int(parts["second"] or 0), int((parts["fraction"] or "0")[:6].ljust(6, "0")),
                    tzinfo=zone)


def _end(start: datetime, parts: dict[str, str | None]) -> datetime | None:
    """The exclusive end of the precision the value was written with; None past 9999."""
    try:
        if parts["month"] is None:
            return start.replace(year=start.year + 1)
        if parts["day"] is None:
            if start.month == 12:
                return start.replace(year=start.year + 1, month=1)
            return start.replace(month=start.month + 1)
        if parts["hour"] is None:
            return start + timedelta(days=1)
        if parts["second"] is None:
            return start + timedelta(minutes=1)
        digits = min(len(parts["fraction"] or ""), 6)
        return start + timedelta(microseconds=10 ** (6 - digits))
    except (ValueError, OverflowError):
        return None


def _zone(text: str | None) -> timezone:
    if text is None or text == "Z":
        return UTC
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"time zone {text!r} is out of range")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(offset if text[0] == "+" else -offset)


def _clamped(moment: datetime | None) -> str:
    """UTC text, clamped into [MIN_INSTANT, MAX_INSTANT] (a zone can push year 1 or 9999
    outside what datetime represents; None is "after 9999")."""
    if moment is None:
        return MAX_INSTANT
    try:
        return format_instant(moment)
    except OverflowError:
        return MIN_INSTANT if moment.year == 1 else MAX_INSTANT
