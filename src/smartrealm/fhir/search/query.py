"""A parsed search, independent of HTTP and SQL.

A search is a list of criteria that must all hold (AND). A ``Clause`` holds when any of its
values match (FHIR's comma = OR); an ``AnyOf`` holds when one of its groups holds, which is
how the access layer expresses "the union of what each granted scope allows" (spec §5.3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    text: str          # folded (fhir.indexing.fold) for "prefix"/"contains"; as sent for "exact"
    mode: str          # "prefix" | "exact" | "contains"


@dataclass(frozen=True)
class DateValue:
    """A date search (R4 §3.1.1.4.2): the half-open UTC range ``[lo, hi)`` the written
    precision covers (``1980`` → 1980-01-01T00:00Z .. 1981-01-01T00:00Z), and a prefix."""

    prefix: str        # "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "sa" | "eb"
    lo: str
    hi: str


@dataclass(frozen=True)
class QuantityValue:
    """``[prefix]number[|system|code]`` (R4 §3.1.1.4.5). ``lo``/``hi`` is the range the
    number's written precision implies (``5.4`` → [5.35, 5.45)), used by eq/ne/ap."""

    prefix: str
    number: float
    lo: float
    hi: float
    system: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class IdValue:
    id: str


@dataclass(frozen=True)
class MissingValue:
    """``param:missing=true|false``: whether the resource has no value for the param."""

    missing: bool


Value = TokenValue | ReferenceValue | StringValue | DateValue | QuantityValue | IdValue \
    | MissingValue


@dataclass(frozen=True)
class Clause:
    param: str                   # a search parameter name, "_id" or "_lastUpdated"
    kind: str                    # "token" | "reference" | "string" | "date" | "quantity" |
    #                              "id" | "lastUpdated"
    values: tuple[Value, ...]    # OR


@dataclass(frozen=True)
class AnyOf:
    groups: tuple[tuple[Clause, ...], ...]  # OR of ANDs; an empty group matches everything


Criterion = Clause | AnyOf


@dataclass(frozen=True)
class SortKey:
    param: str          # "_id" | "_lastUpdated" | a search parameter name
    kind: str           # "id" | "lastUpdated" | the parameter's kind
    descending: bool = False


@dataclass(frozen=True)
class PageQuery:
    """One page of a search: ``count`` matches after skipping ``offset``, in ``sort`` order
    (then by id); ``total`` asks for the number of all matches too."""

    resource_type: str
    criteria: tuple[Criterion, ...]
    count: int
    offset: int = 0
    sort: tuple[SortKey, ...] = ()
    total: bool = True


@dataclass(frozen=True)
class Page:
    resources: list[dict[str, Any]] = field(default_factory=list)
    total: int | None = None    # None when not asked for
    more: bool = False          # there are matches after this page
