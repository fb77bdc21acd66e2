"""Versions on SQL: the write session (one transaction, all or nothing), vread, history
queries and the per-version scope check. ``SqlResourceRepository`` delegates here; writing a
version itself stays in the repository (``Writer``), so an index change there applies to
every path."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    false,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy.exc import IntegrityError

from smartrealm.fhir.repository import HistoryQuery, StoredResource, VersionConflictError
from smartrealm.fhir.search.query import Criterion, Page, PageQuery
from smartrealm.fhir.sql.predicates import criterion_sql, where_terms
from smartrealm.fhir.sql.search import run_page
from smartrealm.fhir.sql.tables import history, resources, search_index

# Writes one new version of a resource on ``conn``; returns the stored resource.
Writer = Callable[[Connection, dict[str, Any]], dict[str, Any]]
# The same, given the version it replaces (None: the resource is new).
PutAt = Callable[[Connection, dict[str, Any], int | None], dict[str, Any]]
CurrentVersion = Callable[[Connection, dict[str, Any]], int | None]


def stored(resource: dict[str, Any], deleted: bool = False) -> StoredResource:
    meta = resource["meta"]
    return StoredResource(resource, int(meta["versionId"]), str(meta["lastUpdated"]), deleted)


def _row_resource(row: Any) -> StoredResource:
    return StoredResource(json.loads(row.content), row.version_id, row.last_updated,
                          bool(row.deleted))


def _key(table: Any, resource_type: str, resource_id: str) -> Any:
    return and_(table.c.resource_type == resource_type, table.c.id == resource_id)


class SqlWriteSession:
    """``WriteSession`` on one connection inside an open transaction.

    A write replaces the version this session *read* (``get``), not whatever is current
    when it writes: if another writer committed in between, the new version's key is
    taken and the transaction fails (``VersionConflictError``) instead of silently
    overwriting a version the caller's checks (``If-Match``, scopes) never saw."""

    def __init__(self, conn: Connection, put_at: PutAt, current_of: CurrentVersion,
                 stamp: Callable[[], str]) -> None:
        self._conn = conn
        self._put_at = put_at
        self._current_of = current_of
        self._stamp = stamp
        self._seen: dict[tuple[str, str], int | None] = {}

    def get(self, resource_type: str, resource_id: str) -> StoredResource | None:
        row = self._conn.execute(select(resources).where(
            _key(resources, resource_type, resource_id))).first()
        self._seen[(resource_type, resource_id)] = None if row is None else row.version_id
        return None if row is None else _row_resource(row)

    def put(self, resource: dict[str, Any]) -> StoredResource:
        key = (resource["resourceType"], resource["id"])
        current = self._seen[key] if key in self._seen else self._current_of(self._conn,
                                                                              resource)
        version = stored(self._put_at(self._conn, resource, current))
        self._seen[key] = version.version_id
        return version

    def delete(self, resource_type: str, resource_id: str) -> StoredResource | None:
        key = (resource_type, resource_id)
        version = delete_version(self._conn, resource_type, resource_id, self._stamp(),
                                 expected=self._seen.get(key))
        if version is not None:
            self._seen[key] = version.version_id
        return version

    def matches(self, resource_type: str, resource_id: str,
                criteria: Sequence[Criterion]) -> bool:
        return _matches(self._conn, resource_type, resource_id, criteria)

    def page(self, query: PageQuery) -> Page:
        return run_page(self._conn, query)

    def exclusive(self, key: str) -> None:
        if self._conn.dialect.name == "postgresql":
            # A transaction-level advisory lock: released at commit or rollback.
            digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
            self._conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": int.from_bytes(digest, "big", signed=True)})


@contextmanager
def write_session(engine: Engine, put_at: PutAt, current_of: CurrentVersion,
                  stamp: Callable[[], str]) -> Iterator[SqlWriteSession]:
    """Commit when the block ends normally; roll back on any exception. A unique-key
    collision (two writers creating the same version) becomes ``VersionConflictError``."""
    try:
        with engine.begin() as conn:
            yield SqlWriteSession(conn, put_at, current_of, stamp)
    except IntegrityError:
        raise VersionConflictError("a concurrent write changed the resource first") from None


def delete_version(conn: Connection, resource_type: str, resource_id: str, stamp: str, *,
                   expected: int | None = None) -> StoredResource | None:
    """Mark the resource deleted as a new version (its content stays the last live one, so
    history can still be scope-checked) and drop its index rows. ``expected``: the version
    the caller checked; another one now is a ``VersionConflictError``."""
    row = conn.execute(select(resources.c.version_id, resources.c.content,
                              resources.c.deleted).where(
        _key(resources, resource_type, resource_id))).first()
    if expected is not None and (row is None or row.version_id != expected):
        raise VersionConflictError("a concurrent write changed the resource first")
    if row is None or row.deleted:
        return None
    version = row.version_id + 1
    conn.execute(update(resources).where(_key(resources, resource_type, resource_id))
                 .values(version_id=version, last_updated=stamp, deleted=True))
    conn.execute(insert(history).values(
        resource_type=resource_type, id=resource_id, version_id=version, last_updated=stamp,
        content=row.content, deleted=True))
    conn.execute(sql_delete(search_index).where(
        search_index.c.resource_type == resource_type,
        search_index.c.resource_id == resource_id))
    return StoredResource(json.loads(row.content), version, stamp, True)


def _matches(conn: Connection, resource_type: str, resource_id: str,
             criteria: Sequence[Criterion]) -> bool:
    query = select(func.count()).select_from(resources).where(
        _key(resources, resource_type, resource_id),
        *(criterion_sql(resource_type, c) for c in criteria))
    return int(conn.execute(query).scalar_one()) > 0


# --------------------------------------------------------------------------- reads


def vread(engine: Engine, resource_type: str, resource_id: str,
          version_id: int) -> StoredResource | None:
    with engine.connect() as conn:
        row = conn.execute(select(history).where(
            _key(history, resource_type, resource_id),
            history.c.version_id == version_id)).first()
    return None if row is None else _row_resource(row)


def history_page(engine: Engine, query: HistoryQuery) -> tuple[list[StoredResource], int]:
    where = _history_where(query)
    with engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(history)
                                 .where(where)).scalar_one())
        if query.count <= 0 or query.offset >= total:
            return [], total
        rows = conn.execute(select(history).where(where).order_by(
            history.c.last_updated.desc(), history.c.resource_type, history.c.id,
            history.c.version_id.desc()).limit(query.count).offset(query.offset))
        return [_row_resource(row) for row in rows], total


def _history_where(query: HistoryQuery) -> Any:
    per_type = []
    for resource_type, restriction in query.types:
        condition = history.c.resource_type == resource_type
        if restriction is not None:
            # The live resources the restriction allows, by the search's own SQL.
            terms = where_terms(resource_type, [restriction])
            if terms is None:
                continue
            condition = and_(condition, history.c.id.in_(select(resources.c.id).where(*terms)))
        per_type.append(condition)
    where = or_(false(), *per_type)
    if query.resource_id is not None:
        where = and_(where, history.c.id == query.resource_id)
    if query.since is not None:
        where = and_(where, history.c.last_updated >= query.since)
    return where


def versions_matching(engine: Engine, writer: Writer, versions: Sequence[StoredResource],
                      criteria: Sequence[Criterion]) -> list[bool]:
    """Make each version current in turn, indexed exactly as a real write would, ask the
    search SQL whether it matches, and roll everything back."""
    if not versions:
        return []
    results: list[bool] = []
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            for version in versions:
                resource = version.resource
                writer(conn, resource)
                results.append(_matches(conn, resource["resourceType"], resource["id"],
                                        criteria))
        finally:
            transaction.rollback()
    return results
