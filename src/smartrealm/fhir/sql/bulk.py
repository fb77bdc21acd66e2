"""Bulk writes (``ResourceRepository.bulk_load``: `smartrealm load`, start-up seeding, the
benchmarks). The same rows as one ``put`` per resource — resource, history, search index —
but a chunk at a time: one query per resource type for the current versions, then the new
resources' rows in bulk; only updates of existing resources go row by row.

What keeps a load fast as the store grows (bench/bulk_load.py, 1M resources):

* the current versions are found by primary key (``resource_type = ? AND id IN (…)``): a
  row-value ``(resource_type, id) IN (…)`` made SQLite scan the whole table once a chunk,
  so every chunk cost more than the last;
* new rows go straight to the driver — SQLite's ``executemany`` with tuples, PostgreSQL's
  ``COPY`` — as SQLAlchemy's per-row parameter handling cost as much as the inserts;
* SQLite gets a larger page cache for the load, so the index pages a chunk touches (the
  date index takes rows all over its range) stay in memory between chunks instead of
  being read back and rewritten."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.dialects import sqlite

from smartrealm.fhir.sql.reindex import index_tuples, write_index
from smartrealm.fhir.sql.tables import INDEX_COLUMNS, history, resources, search_index

CHUNK = 1000
SQLITE_LOAD_CACHE_KIB = 256 * 1024  # PRAGMA cache_size while loading (default: 2 MiB)
_ROW_COLUMNS = ("resource_type", "id", "version_id", "last_updated", "content", "deleted")
_VERSION_COLUMNS = ("version_id", "last_updated", "deleted", "content")
_UPDATE_RESOURCE = update(resources).where(resources.c.resource_type == bindparam("key_type"),
                                           resources.c.id == bindparam("key_id"))

Prepare = Callable[[dict[str, Any]], dict[str, Any]]  # a checked copy with type and id
Rows = list[tuple[Any, ...]]


def bulk_write(conn: Connection, items: Iterable[dict[str, Any]], stamp: Callable[[], str],
               prepare: Prepare) -> int:
    written = 0
    with _load_cache(conn):
        for chunk in _chunks(items):
            written += _write_chunk(conn, [prepare(r) for r in chunk], stamp)
    return written


class _load_cache:  # noqa: N801 (used as a context manager, like contextlib's)
    """SQLite: a page cache of SQLITE_LOAD_CACHE_KIB for this connection while it loads,
    the previous size restored after (the pooled connection serves reads later)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn if conn.dialect.name == "sqlite" else None
        self._before: Any = None

    def __enter__(self) -> None:
        if self._conn is not None:
            self._before = self._conn.exec_driver_sql("PRAGMA cache_size").scalar()
            self._conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_LOAD_CACHE_KIB}")

    def __exit__(self, *_exc: object) -> None:
        if self._conn is not None and self._before is not None:
            self._conn.exec_driver_sql(f"PRAGMA cache_size = {int(self._before)}")


def _chunks(items: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk


def _current_versions(conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    ids: defaultdict[str, list[str]] = defaultdict(list)
    for resource_type, resource_id in keys:
        ids[resource_type].append(resource_id)
    found: dict[tuple[str, str], int] = {}
    for resource_type, some in ids.items():
        rows = conn.execute(select(resources.c.id, resources.c.version_id).where(
            resources.c.resource_type == resource_type, resources.c.id.in_(some)))
        found.update(((resource_type, r.id), r.version_id) for r in rows)
    return found


def _write_chunk(conn: Connection, chunk: list[dict[str, Any]],
                 stamp: Callable[[], str]) -> int:
    versions = _current_versions(conn, {(r["resourceType"], r["id"]) for r in chunk})
    fresh: Rows = []                           # rows of resources new to the store
    index: Rows = []                           # their search-index rows
    updates: list[tuple[dict[str, Any], tuple[Any, ...]]] = []
    history_rows: Rows = []
    for stored in chunk:
        key = (stored["resourceType"], stored["id"])
        row = _row(stored, versions.get(key, 0) + 1, stamp())
        if key in versions:
            updates.append((stored, row))
        else:
            fresh.append(row)
            index += index_tuples(stored)
        versions[key] = row[2]  # the same id again later in the chunk: an update
        history_rows.append(row)
    for table, columns, rows in ((resources, _ROW_COLUMNS, fresh),
                                 (search_index, INDEX_COLUMNS, index),
                                 (history, _ROW_COLUMNS, history_rows)):
        if rows:
            _insert(conn, table, columns, rows)
    for stored, row in updates:
        values = dict(zip(_ROW_COLUMNS, row, strict=True))
        conn.execute(_UPDATE_RESOURCE, {"key_type": row[0], "key_id": row[1],
                                        **{k: values[k] for k in _VERSION_COLUMNS}})
        write_index(conn, stored, fresh=False)
    return len(chunk)


def _insert(conn: Connection, table: Table, columns: tuple[str, ...], rows: Rows) -> None:
    """Many rows in the connection's transaction, through the driver (see the docstring)."""
    driver = conn.connection.driver_connection
    assert driver is not None  # an open connection always has one
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        with driver.cursor() as cursor, cursor.copy(
                f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    cursor = driver.cursor()
    try:
        cursor.executemany(_sqlite_insert(table, columns), rows)
    finally:
        cursor.close()


@cache
def _sqlite_insert(table: Table, columns: tuple[str, ...]) -> str:
    """``INSERT INTO table (columns) VALUES (?, …)``, as SQLAlchemy writes it."""
    return str(insert(table).compile(dialect=sqlite.dialect(), column_keys=list(columns)))


def _row(stored: dict[str, Any], version: int, stamp: str) -> tuple[Any, ...]:
    """A resource (and history) row in _ROW_COLUMNS order."""
    stored["meta"] = {**stored.get("meta", {}), "versionId": str(version),
                      "lastUpdated": stamp}
    return (stored["resourceType"], stored["id"], version, stamp,
            json.dumps(stored, separators=(",", ":"), ensure_ascii=False), False)
