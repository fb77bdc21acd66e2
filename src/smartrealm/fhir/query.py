"""A parsed search, independent of HTTP and SQL.

A search is a list of criteria that must all hold (AND). A ``Clause`` holds when any of its
values match (FHIR's comma = OR); an ``AnyOf`` holds when one of its groups holds, which is
how the access layer expresses "the union of what each granted scope allows" (spec §5.3)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TokenValue:
    """``system|code`` (both), ``|code`` (system must be absent: ``system == ""``),
    ``code`` (any system: ``system is None``), ``system|`` (any code: ``code is None``)."""

    system: str | None
    code: str | None


@dataclass(frozen=True)
class ReferenceValue:
    """A local reference (``resource_type`` may be None: any type) or a foreign absolute
    URL, which can only match a reference written as that same URL."""

    resource_type: str | None
    id: str | None
    url: str | None = None


@dataclass(frozen=True)
class StringValue:
    text: str          # already lower-cased for "prefix"/"contains"
    mode: str          # "prefix" | "exact" | "contains"


@dataclass(frozen=True)
class DateValue:
    """A date range compared with a prefix: ``lo``/``hi`` are the first and last day the
    written precision covers (``1980`` → 1980-01-01 .. 1980-12-31)."""

    prefix: str        # "eq" | "lt" | "le" | "gt" | "ge"
    lo: str
    hi: str


@dataclass(frozen=True)
class IdValue:
    id: str


Value = TokenValue | ReferenceValue | StringValue | DateValue | IdValue


@dataclass(frozen=True)
class Clause:
    param: str                   # a search parameter name, or "_id"
    kind: str                    # "token" | "reference" | "string" | "date" | "id"
    values: tuple[Value, ...]    # OR


@dataclass(frozen=True)
class AnyOf:
    groups: tuple[tuple[Clause, ...], ...]  # OR of ANDs; an empty group matches everything


Criterion = Clause | AnyOf
