"""Search-index rows of a resource, and keeping a store's index in step with the code.

The index is derived data: when the parameter table (fhir/search/params.py) or what
fhir/search/indexing.py stores changes, a store written by an older version would silently
miss matches. So the store records the version of the index definition its rows were built
with, and ``ensure_search_index`` (run by ``create_tables`` at start-up) adds new columns
and indexes and rebuilds the rows from the stored resources when the version differs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, text, tuple_

from smartrealm.fhir.search.indexing import IndexEntry, index_entries
from smartrealm.fhir.search.params import SEARCH_PARAMS
from smartrealm.fhir.sql.tables import INDEX_COLUMNS, index_state, resources, search_index
from smartrealm.storage import add_missing_columns

# Bump when search/indexing.py changes what it stores for the same parameter table.
INDEX_REVISION = 2
_OBSOLETE_INDEXES = ("ix_fhir_search_value", "ix_fhir_search_ref", "ix_fhir_search_owner")
_BATCH = 1000
_WIDTH = {c.name: getattr(c.type, "length", None) for c in search_index.columns}
_ENTRY_WIDTHS = tuple(_WIDTH[name] for name in IndexEntry._fields)


def index_version() -> str:
    """Changes with the parameter table and with what search/indexing.py stores."""
    table = sorted((t, sorted((p.name, p.kind, p.paths, p.target) for p in params.values()))
                   for t, params in SEARCH_PARAMS.items())
    digest = hashlib.sha256(repr((INDEX_REVISION, table)).encode()).hexdigest()
    return digest[:32]


def index_rows(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows ``fhir_search_index`` holds for ``resource`` (strings cut to the column
    width; NUL characters, which PostgreSQL text cannot hold, removed)."""
    return [dict(zip(INDEX_COLUMNS, row, strict=True)) for row in index_tuples(resource)]


def index_tuples(resource: dict[str, Any]) -> list[tuple[Any, ...]]:
    """``index_rows`` as tuples in INDEX_COLUMNS order (bulk loads: no dict per row)."""
    rtype, rid = resource["resourceType"], resource["id"]
    return [(rtype, rid, *map(_fit, _ENTRY_WIDTHS, entry))
            for entry in index_entries(resource)]


# Built once: statement construction is a large share of a bulk load's time.
_DELETE_ROWS = delete(search_index).where(
    search_index.c.resource_type == bindparam("rtype"),
    search_index.c.resource_id == bindparam("rid"))
_INSERT_ROWS = insert(search_index)


def write_index(conn: Connection, resource: dict[str, Any], *, fresh: bool = False) -> None:
    """Replace the index rows of ``resource`` (its current version); ``fresh``: the
    resource is new, so there are no rows to delete."""
    if not fresh:
        conn.execute(_DELETE_ROWS, {"rtype": resource["resourceType"], "rid": resource["id"]})
    rows = index_rows(resource)
    if rows:
        conn.execute(_INSERT_ROWS, rows)


def ensure_search_index(engine: Engine) -> bool:
    """Bring the index schema and rows up to date; True if the rows were rebuilt."""
    add_missing_columns(engine, search_index)
    with engine.begin() as conn:
        for name in _OBSOLETE_INDEXES:
            conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        for index in (*search_index.indexes, *resources.indexes):
            index.create(conn, checkfirst=True)
        stored = conn.execute(select(index_state.c.version)).scalar_one_or_none()
        version = index_version()
        if stored == version:
            return False
        rebuilt = stored is not None or _has_resources(conn)
        if rebuilt:
            rebuild_index(conn)
        conn.execute(delete(index_state))
        conn.execute(insert(index_state).values(id=1, version=version))
    return rebuilt


def rebuild_index(conn: Connection) -> None:
    """Re-derive every row, reading the resources in key order a batch at a time."""
    conn.execute(delete(search_index))
    after: tuple[str, str] = ("", "")
    key = tuple_(resources.c.resource_type, resources.c.id)
    while True:
        rows = conn.execute(
            select(resources.c.resource_type, resources.c.id, resources.c.content)
            .where(resources.c.deleted.is_(False), key > tuple_(*after))
            .order_by(resources.c.resource_type, resources.c.id).limit(_BATCH)).all()
        if not rows:
            return
        batch = [r for row in rows for r in index_rows(json.loads(row.content))]
        if batch:
            conn.execute(insert(search_index), batch)
        after = (rows[-1].resource_type, rows[-1].id)


def _has_resources(conn: Connection) -> bool:
    return conn.execute(select(resources.c.id).limit(1)).first() is not None


def _fit(width: int | None, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value[:width] if width is not None and len(value) > width else value
