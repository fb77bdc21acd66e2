"""Search criteria (fhir/search/query.py) as SQL predicates over the resource and index tables.

Performance shape (checked with EXPLAIN in tests/fhir/test_search_plans.py and printed by
bench/search_latency.py): one criterion *drives* the query — ``id IN (SELECT resource_id
FROM index WHERE resource_type, param, value…)``, answered from a composite index ending
in ``resource_id`` — and every other criterion is a correlated ``EXISTS`` probe by
``(resource_type, resource_id, param)``. So ``Observation?patient=X&category=Y`` reads only
X's observations, however many laboratory results the store holds. Criteria shared by
every group of an access restriction (the compartment of a ``patient/`` scope) are factored
out of the OR so they can drive too."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, false, literal, not_, or_, select, true

from smartrealm.core.defaults import SEARCH_INDEX_MAX_STRING as MAX_INDEXED
from smartrealm.fhir.search.dates import MAX_INSTANT
from smartrealm.fhir.search.query import (
    AnyOf,
    Clause,
    Criterion,
    DateValue,
    IdValue,
    MissingValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    Value,
)
from smartrealm.fhir.sql.planning import by_resource
from smartrealm.fhir.sql.tables import resources, search_index

_LIKE_ESCAPE = "\\"
# How likely a criterion is to be selective: the lowest rank drives the query.
_RANK = {"id": 0, "reference": 1, "token": 2, "quantity": 4, "date": 4, "string": 3}


def truncate(value: str | None) -> str | None:
    return None if value is None else value[:MAX_INDEXED]


def where_terms(resource_type: str, criteria: tuple[Criterion, ...] | list[Criterion]
                ) -> list[Any] | None:
    """WHERE terms over ``resources`` for the AND of ``criteria``; None if nothing can
    match (an access restriction with no group)."""
    clauses: list[Clause] = []
    rest: list[AnyOf] = []
    for criterion in criteria:
        if isinstance(criterion, Clause):
            clauses.append(criterion)
            continue
        if not criterion.groups:
            return None
        common, remaining = factor(criterion)
        clauses += [c for c in common if c not in clauses]
        if remaining is not None:
            rest.append(remaining)
    driver = _driver(clauses)
    terms: list[Any] = [resources.c.resource_type == resource_type,
                        resources.c.deleted.is_(False)]
    for clause in clauses:
        terms.append(_drive(resource_type, clause) if clause is driver
                     else clause_sql(resource_type, clause))
    terms += [any_of_sql(resource_type, a) for a in rest]
    return terms


def factor(any_of: AnyOf) -> tuple[list[Clause], AnyOf | None]:
    """(clauses every group requires, what is left of the OR — None if that is "all")."""
    groups = any_of.groups
    common = [c for c in groups[0] if all(c in g for g in groups[1:])]
    remaining = tuple(tuple(c for c in g if c not in common) for g in groups)
    if any(not g for g in remaining):
        return common, None
    return common, AnyOf(remaining)


def any_of_sql(resource_type: str, any_of: AnyOf) -> Any:
    if not any_of.groups:
        return false()
    return or_(*(and_(true(), *(clause_sql(resource_type, c) for c in group))
                 for group in any_of.groups))


def criterion_sql(resource_type: str, criterion: Criterion) -> Any:
    if isinstance(criterion, AnyOf):
        return any_of_sql(resource_type, criterion)
    return clause_sql(resource_type, criterion)


def clause_sql(resource_type: str, clause: Clause) -> Any:
    """A resource matches when ANY value of the clause matches (FHIR's comma)."""
    if clause.kind == "id":
        return resources.c.id.in_([v.id for v in clause.values if isinstance(v, IdValue)])
    if clause.kind == "lastUpdated":
        return or_(false(), *(point_sql(resources.c.last_updated, v) for v in clause.values
                              if isinstance(v, DateValue)))
    missing = [v for v in clause.values if isinstance(v, MissingValue)]
    probe = exists(by_resource(select(literal(1)).where(  # planning.py
        search_index.c.resource_type == resource_type,
        search_index.c.resource_id == resources.c.id,
        search_index.c.param == clause.param,
        *([] if missing else [values_sql(clause.values)]))))
    if missing and missing[0].missing:
        return not_(probe)
    return probe


def _driver(clauses: list[Clause]) -> Clause | None:
    drivable = [c for c in clauses if c.kind in _RANK
                and not any(isinstance(v, MissingValue) for v in c.values)
                and not any(isinstance(v, DateValue | QuantityValue) and v.prefix == "ne"
                            for v in c.values)]
    return min(drivable, key=lambda c: _RANK[c.kind], default=None)


def _drive(resource_type: str, clause: Clause) -> Any:
    if clause.kind == "id":
        return clause_sql(resource_type, clause)
    matches = select(search_index.c.resource_id).where(
        search_index.c.resource_type == resource_type,
        search_index.c.param == clause.param,
        values_sql(clause.values))
    return resources.c.id.in_(matches)


def values_sql(values: tuple[Value, ...]) -> Any:
    """The OR of ``values`` (FHIR's comma). Equality tests on the same column(s) become
    one ``IN`` list: a search may carry up to a thousand values (fhir/search/limits.py),
    and an OR chain is as deep as it is long (SQLite refuses expressions deeper than
    1000) and costs SQLAlchemy and the planner one node per value, where an IN list is a
    single node with one bound, expanding parameter."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    terms: list[Any] = []
    for value in values:
        key, item = _equality(value)
        if key is None or item is None:
            terms.append(value_sql(value))
        else:
            groups.setdefault(key, []).append(item)
    for key, items in groups.items():
        terms.append(_in_list(key, items))
    return or_(false(), *terms)


def _equality(value: Value) -> tuple[tuple[Any, ...] | None, str | None]:
    """(what the test fixes besides one column, that column's value) for a value that is
    an equality on one varying column; (None, None) for any other."""
    if isinstance(value, TokenValue) and value.code is not None and value.system != "":
        return ("token", truncate(value.system)), truncate(value.code)
    if isinstance(value, ReferenceValue):
        if value.url is not None:
            return ("url",), truncate(value.url)
        return ("reference", value.resource_type), value.id
    if isinstance(value, StringValue) and value.mode == "exact":
        return ("exact",), truncate(value.text)
    return None, None


def _in_list(key: tuple[Any, ...], items: list[str]) -> Any:
    col = search_index.c
    distinct = list(dict.fromkeys(items))
    kind = key[0]
    if kind == "token":
        fixed = [] if key[1] is None else [col.system == key[1]]
        return and_(true(), *fixed, _one_of(col.value, distinct))
    if kind == "reference":
        fixed = [] if key[1] is None else [col.ref_type == key[1]]
        return and_(true(), *fixed, _one_of(col.ref_id, distinct))
    return _one_of(col.value if kind == "url" else col.exact, distinct)


def _one_of(column: Any, items: list[str]) -> Any:
    """``=`` for one value (the plans tests/fhir/test_search_plans.py checks), else IN."""
    return column == items[0] if len(items) == 1 else column.in_(items)


def value_sql(value: Value) -> Any:
    if isinstance(value, TokenValue):
        return _token(value)
    if isinstance(value, ReferenceValue):
        return _reference(value)
    if isinstance(value, StringValue):
        return _string(value)
    if isinstance(value, DateValue):
        return range_sql(search_index.c.low, search_index.c.high, value)
    if isinstance(value, QuantityValue):
        return _quantity(value)
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
    if value.mode == "exact":
        return search_index.c.exact == truncate(value.text)
    text = truncate(value.text) or ""
    escaped = (text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
               .replace("%", _LIKE_ESCAPE + "%").replace("_", _LIKE_ESCAPE + "_"))
    pattern = f"%{escaped}%" if value.mode == "contains" else f"{escaped}%"
    return search_index.c.value.like(pattern, escape=_LIKE_ESCAPE)


def range_sql(low: Any, high: Any, value: DateValue) -> Any:
    """R4 §3.1.1.4.2 prefixes over a resource range [low, high) and a search range
    [lo, hi): eq = contained; gt/lt = extends above/below; ge/le = that or contained;
    sa/eb = starts after / ends before. Only the prefix asked for is built: a search may
    hold a thousand values (fhir/search/limits.py)."""
    def contained() -> Any:
        return and_(low >= value.lo, high <= value.hi)

    prefix = value.prefix
    if prefix in ("eq", "ne"):
        return contained() if prefix == "eq" else not_(contained())
    if prefix in ("le", "ge"):
        beyond = low < value.lo if prefix == "le" else high > value.hi
        return or_(beyond, contained())
    compare: dict[str, Callable[[], Any]] = {
        "lt": lambda: low < value.lo, "gt": lambda: high > value.hi,
        "sa": lambda: low >= value.hi, "eb": lambda: high <= value.lo}
    return compare[prefix]()


def point_sql(column: Any, value: DateValue) -> Any:
    """The same prefixes for ``meta.lastUpdated``, a millisecond instant t = [t, t+1ms)
    stored as ``YYYY-MM-DDThh:mm:ss.mmm+00:00`` (SqlResourceRepository._stamp)."""
    lo, hi = _stamp_bound(value.lo), _stamp_bound(value.hi)
    compare: dict[str, Callable[[], Any]] = {
        "eq": lambda: and_(column >= lo, column < hi),
        "ne": lambda: not_(and_(column >= lo, column < hi)),
        "lt": lambda: column < lo, "gt": lambda: column >= hi,
        "le": lambda: column < hi, "ge": lambda: column >= lo, "sa": lambda: column >= hi,
        "eb": lambda: column < lo,
    }
    return compare[value.prefix]()


def _stamp_bound(instant: str) -> str:
    """A range bound in the resource table's stamp format, rounded up to the millisecond
    (for a whole-millisecond t, ``t < b`` ⇔ ``t < ceil(b)`` and ``t >= b`` ⇔ ``t >= ceil(b)``)."""
    if instant >= MAX_INSTANT[:23]:
        return "9999-12-31T23:59:59.999+00:00"
    moment = datetime.strptime(instant, "%Y-%m-%dT%H:%M:%S.%fZ")
    if moment.microsecond % 1000:
        moment += timedelta(microseconds=1000 - moment.microsecond % 1000)
    return moment.isoformat(timespec="milliseconds") + "+00:00"


def _quantity(value: QuantityValue) -> Any:
    col = search_index.c
    parts = [_quantity_compare(col.number, value)]
    if value.system is not None:
        parts.append(col.system == truncate(value.system))
    if value.code is not None:
        parts.append(col.value == truncate(value.code))
    return and_(*parts)


def _quantity_compare(number: Any, value: QuantityValue) -> Any:
    """R4 §3.1.1.4.5 prefixes; eq/ne use the range the written precision implies, ap ±10 %
    (at least that range). Only the prefix asked for is built (see range_sql)."""
    if value.prefix in ("eq", "ne"):
        within = and_(number >= value.lo, number < value.hi)
        return within if value.prefix == "eq" else not_(within)
    if value.prefix == "ap":
        spread = max(abs(value.number) * 0.1, value.hi - value.lo)
        return and_(number >= value.number - spread, number <= value.number + spread)
    compare: dict[str, Callable[[], Any]] = {
        "lt": lambda: number < value.number, "le": lambda: number <= value.number,
        "gt": lambda: number > value.number, "ge": lambda: number >= value.number,
        "sa": lambda: number > value.number, "eb": lambda: number < value.number,
    }
    return compare[value.prefix]()
