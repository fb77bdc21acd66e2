"""Bulk writes (``ResourceRepository.bulk_load``: `smartrealm load`, start-up seeding, the
benchmarks). The same rows as one ``put`` per resource — resource, history, search index —
but a chunk at a time: one query for the current versions, one multi-row insert per table
for new resources; only updates of existing resources go row by row."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, tuple_, update

from .reindex import index_rows, write_index
from .tables import history, resources, search_index

CHUNK = 500
_INSERT_RESOURCES = insert(resources)
_INSERT_HISTORY = insert(history)
_INSERT_SEARCH_INDEX = insert(search_index)
_VERSION_COLUMNS = ("version_id", "last_updated", "deleted", "content")
_UPDATE_RESOURCE = update(resources).where(resources.c.resource_type == bindparam("key_type"),
                                           resources.c.id == bindparam("key_id"))

Prepare = Callable[[dict[str, Any]], dict[str, Any]]  # a checked copy with type and id


def bulk_write(conn: Connection, items: Iterable[dict[str, Any]], stamp: Callable[[], str],
               prepare: Prepare) -> int:
    written = 0
    for chunk in _chunks(items):
        written += _write_chunk(conn, [prepare(r) for r in chunk], stamp)
    return written


def _chunks(items: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk


def _current_versions(conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    key = tuple_(resources.c.resource_type, resources.c.id)
    rows = conn.execute(select(resources.c.resource_type, resources.c.id,
                               resources.c.version_id).where(key.in_(list(keys))))
    return {(r.resource_type, r.id): r.version_id for r in rows}


def _write_chunk(conn: Connection, chunk: list[dict[str, Any]],
                 stamp: Callable[[], str]) -> int:
    versions = _current_versions(conn, {(r["resourceType"], r["id"]) for r in chunk})
    fresh: list[dict[str, Any]] = []          # rows of resources new to the store
    index: list[dict[str, Any]] = []          # their search-index rows
    updates: list[tuple[dict[str, Any], dict[str, Any]]] = []
    history_rows: list[dict[str, Any]] = []
    for stored in chunk:
        key = (stored["resourceType"], stored["id"])
        row = _row(stored, versions.get(key, 0) + 1, stamp())
        if key in versions:
            updates.append((stored, row))
        else:
            fresh.append(row)
            index += index_rows(stored)
        versions[key] = row["version_id"]  # the same id again later in the chunk: an update
        history_rows.append(row)
    for statement, rows in ((_INSERT_RESOURCES, fresh), (_INSERT_SEARCH_INDEX, index),
                            (_INSERT_HISTORY, history_rows)):
        if rows:
            conn.execute(statement, rows)
    for stored, row in updates:
        conn.execute(_UPDATE_RESOURCE, {"key_type": row["resource_type"], "key_id": row["id"],
                                        **{k: row[k] for k in _VERSION_COLUMNS}})
        write_index(conn, stored, fresh=False)
    return len(chunk)


def _row(stored: dict[str, Any], version: int, stamp: str) -> dict[str, Any]:
    stored["meta"] = {**stored.get("meta", {}), "versionId": str(version),
                      "lastUpdated": stamp}
    return {"resource_type": stored["resourceType"], "id": stored["id"],
            "version_id": version, "last_updated": stamp, "deleted": False,
            "content": json.dumps(stored, separators=(",", ":"), ensure_ascii=False)}
