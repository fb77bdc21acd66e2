"""Search criteria (fhir/query.py) as SQL predicates over the resource and index tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, or_, select, true

from smartrealm.fhir.query import (
    AnyOf,
    Clause,
    Criterion,
    DateValue,
    IdValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    Value,
)

from .tables import resources, search_index

MAX_INDEXED = 512  # the width of the index columns
_LIKE_ESCAPE = "\\"


def truncate(value: str | None) -> str | None:
    return None if value is None else value[:MAX_INDEXED]


def criterion_sql(resource_type: str, criterion: Criterion) -> Any:
    if isinstance(criterion, AnyOf):
        if not criterion.groups:
            return false()
        return or_(*(and_(true(), *(clause_sql(resource_type, c) for c in group))
                     for group in criterion.groups))
    return clause_sql(resource_type, criterion)


def clause_sql(resource_type: str, clause: Clause) -> Any:
    """A resource matches when ANY value of the clause matches (FHIR's comma)."""
    if clause.kind == "id":
        return resources.c.id.in_([v.id for v in clause.values if isinstance(v, IdValue)])
    matches = select(search_index.c.resource_id).where(
        search_index.c.resource_type == resource_type,
        search_index.c.param == clause.param,
        or_(false(), *(value_sql(v) for v in clause.values)),
    )
    return resources.c.id.in_(matches)


def value_sql(value: Value) -> Any:
    if isinstance(value, TokenValue):
        return _token(value)
    if isinstance(value, ReferenceValue):
        return _reference(value)
    if isinstance(value, StringValue):
        return _string(value)
    if isinstance(value, DateValue):
        return _date(value)
    return false()


def _token(value: TokenValue) -> Any:
    col = search_index.c
    parts: list[Any] = []
    if value.system == "":
        parts.append(col.system.is_(None))
    elif value.system is not None:
        parts.append(col.system == truncate(value.system))
    if value.code is not None:
        parts.append(col.value == truncate(value.code))
    return and_(true(), *parts)


def _reference(value: ReferenceValue) -> Any:
    col = search_index.c
    if value.url is not None:
        return col.value == truncate(value.url)
    parts = [col.ref_id == value.id]
    if value.resource_type is not None:
        parts.append(col.ref_type == value.resource_type)
    return and_(*parts)


def _string(value: StringValue) -> Any:
    text = truncate(value.text) or ""
    escaped = (text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
               .replace("%", _LIKE_ESCAPE + "%").replace("_", _LIKE_ESCAPE + "_"))
    pattern = f"%{escaped}%" if value.mode == "contains" else f"{escaped}%"
    return search_index.c.value.like(pattern, escape=_LIKE_ESCAPE)


def _date(value: DateValue) -> Any:
    col = search_index.c.value
    if value.prefix == "lt":
        return col < value.lo
    if value.prefix == "le":
        return col <= value.hi
    if value.prefix == "gt":
        return col > value.hi
    if value.prefix == "ge":
        return col >= value.lo
    return and_(col >= value.lo, col <= value.hi)
