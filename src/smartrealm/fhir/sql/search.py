"""The SQL of one search page: the matches (sorted, one row more than the page to know
whether another page follows) and, when asked, their count.

Sorting (R4 §3.1.1.5.2): by ``_id`` and ``_lastUpdated`` from the resource table (primary
key and ``ix_fhir_resource_updated``); by a search parameter from its index entries — the
lowest value ascending, the highest descending (a date's range low / high), resources
without a value last. Every order ends with the id (in the direction of the last key), so
pages never overlap."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Select, func, select

from smartrealm.fhir.search.query import Page, PageQuery, SortKey
from smartrealm.fhir.sql.planning import by_resource
from smartrealm.fhir.sql.predicates import where_terms
from smartrealm.fhir.sql.tables import resources, search_index


def page_statement(query: PageQuery) -> Select[Any] | None:
    """The SELECT of one page (``count + 1`` rows); None when nothing can match."""
    terms = where_terms(query.resource_type, query.criteria)
    if terms is None:
        return None
    order = [_order(query.resource_type, key) for key in query.sort]
    if not any(key.kind == "id" for key in query.sort):
        # the tie-break runs the way the last key does, so an index on (…, last_updated,
        # id) serves -_lastUpdated too (a backward scan)
        last_descending = bool(query.sort) and query.sort[-1].descending
        order.append(resources.c.id.desc() if last_descending else resources.c.id)
    return (select(resources.c.content).where(*terms).order_by(*order)
            .limit(query.count + 1).offset(query.offset))


def count_statement(query: PageQuery) -> Select[Any] | None:
    terms = where_terms(query.resource_type, query.criteria)
    if terms is None:
        return None
    return select(func.count()).select_from(resources).where(*terms)


def run_page(conn: Connection, query: PageQuery) -> Page:
    page = page_statement(query) if query.count > 0 else None
    counter = count_statement(query) if query.total else None
    found: list[dict[str, Any]] = []
    if page is not None:
        found = [json.loads(row.content) for row in conn.execute(page)]
    total = int(conn.execute(counter).scalar_one()) if counter is not None else None
    if query.total and total is None:
        total = 0
    more = len(found) > query.count
    return Page(found[:query.count], total, more)


def _order(resource_type: str, key: SortKey) -> Any:
    if key.kind == "id":
        column: Any = resources.c.id
    elif key.kind == "lastUpdated":
        column = resources.c.last_updated
    else:
        column = _index_value(resource_type, key)
    ordered = column.desc() if key.descending else column.asc()
    return ordered.nulls_last() if key.kind not in ("id", "lastUpdated") else ordered


def _index_value(resource_type: str, key: SortKey) -> Any:
    if key.kind == "date":
        column = search_index.c.high if key.descending else search_index.c.low
    else:
        column = search_index.c.value
    aggregate = func.max(column) if key.descending else func.min(column)
    return by_resource(select(aggregate).where(  # planning.py
        search_index.c.resource_type == resource_type,
        search_index.c.resource_id == resources.c.id,
        search_index.c.param == key.param)).scalar_subquery()
