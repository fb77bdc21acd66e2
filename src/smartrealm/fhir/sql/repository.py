"""ResourceRepository on SQLAlchemy Core: SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.dialects import sqlite

from smartrealm.core.fhir_ids import is_fhir_id, is_resource_type
from smartrealm.fhir.repository import HistoryQuery, StoredResource
from smartrealm.fhir.search.query import Criterion, Page, PageQuery
from smartrealm.fhir.sql import versions
from smartrealm.fhir.sql.bulk import bulk_write
from smartrealm.fhir.sql.planning import AFTER_LOAD, WHILE_GROWING, refresh_statistics
from smartrealm.fhir.sql.reindex import ensure_search_index, write_index
from smartrealm.fhir.sql.search import run_page
from smartrealm.fhir.sql.tables import history, metadata, resources
from smartrealm.storage.schema import FHIR_SCHEMA, stamp_if_new

# Built once and executed with parameters: building a statement per row was most of a
# bulk load's time (as in sql/reindex.py).
_CURRENT_VERSION = select(resources.c.version_id).where(
    resources.c.resource_type == bindparam("rtype"), resources.c.id == bindparam("rid"))
_INSERT_RESOURCE = insert(resources)
_UPDATE_RESOURCE = update(resources).where(resources.c.resource_type == bindparam("key_type"),
                                           resources.c.id == bindparam("key_id"))
_INSERT_HISTORY = insert(history)
_GET = select(resources.c.version_id, resources.c.last_updated, resources.c.content,
              resources.c.deleted).where(resources.c.resource_type == bindparam("rtype"),
                                         resources.c.id == bindparam("rid"))
_GET_SQLITE = str(_GET.compile(dialect=sqlite.dialect()))  # "... = ? AND ... = ?"
WRITES_PER_CHECK = 1000  # API writes between two looks at the store's growth


def utc_now() -> datetime:
    return datetime.now(UTC)


class SqlResourceRepository:
    """One server's resources. ``clock`` stamps ``meta.lastUpdated`` (injectable for tests)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock
        self._readers = threading.local()  # _reader()
        self._writes = 0  # since the last statistics check (planning.py)

    def create_tables(self) -> None:
        """Create (idempotent) or extend the tables; a new store is stamped with its schema
        version (storage/schema.py)."""
        stamp_if_new(self._engine, FHIR_SCHEMA, self._create)
        self.refresh_statistics()  # e.g. a store loaded by an older version: none yet

    def _create(self) -> None:
        metadata.create_all(self._engine)
        for index in history.indexes:  # stores created before the index existed
            index.create(self._engine, checkfirst=True)
        ensure_search_index(self._engine)  # new params/columns: rebuild (sql/reindex.py)

    def refresh_statistics(self) -> bool:
        """ANALYZE if the store grew since the planner's statistics were gathered (at
        the end of a bulk load, at start-up); True if it ran (sql/planning.py)."""
        with self._engine.begin() as conn:
            return refresh_statistics(conn, AFTER_LOAD)

    # ------------------------------------------------------------------ writes

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        with self._engine.begin() as conn:
            stored = self._put(conn, resource, self._current_version(conn, resource))
            if self._writes >= WRITES_PER_CHECK:  # writes add up: keep plans index-driven
                self._writes = 0
                refresh_statistics(conn, WHILE_GROWING)
            return stored

    def bulk_load(self, resources_: Iterable[dict[str, Any]]) -> int:
        with self._engine.begin() as conn:  # many rows per statement (sql/bulk.py)
            written = bulk_write(conn, resources_, self._stamp, _checked_top)
            refresh_statistics(conn, WHILE_GROWING)  # a long load, a server reading along
            return written

    def delete(self, resource_type: str, resource_id: str) -> bool:
        with self._engine.begin() as conn:
            deleted = versions.delete_version(conn, resource_type, resource_id, self._stamp())
        return deleted is not None

    def transaction(self) -> AbstractContextManager[versions.SqlWriteSession]:
        return versions.write_session(self._engine, self._put, self._current_version,
                                      self._stamp)

    def _write(self, conn: Connection, resource: dict[str, Any]) -> dict[str, Any]:
        return self._put(conn, resource, self._current_version(conn, resource))

    def _current_version(self, conn: Connection, resource: dict[str, Any]) -> int | None:
        resource_type, resource_id = resource.get("resourceType"), resource.get("id")
        if not isinstance(resource_type, str) or not isinstance(resource_id, str):
            return None
        return conn.execute(_CURRENT_VERSION, {"rtype": resource_type, "rid": resource_id}
                            ).scalar_one_or_none()

    def _put(self, conn: Connection, resource: dict[str, Any],
             current: int | None) -> dict[str, Any]:
        stored = _checked_copy(resource)
        self._writes += 1
        version = (current or 0) + 1
        stamp = self._stamp()
        stored["meta"] = {**stored.get("meta", {}), "versionId": str(version),
                          "lastUpdated": stamp}
        rtype, rid = stored["resourceType"], stored["id"]
        row = {"version_id": version, "last_updated": stamp, "deleted": False,
               "content": json.dumps(stored, separators=(",", ":"), ensure_ascii=False)}
        if current is None:
            conn.execute(_INSERT_RESOURCE, {"resource_type": rtype, "id": rid, **row})
        else:
            conn.execute(_UPDATE_RESOURCE, {"key_type": rtype, "key_id": rid, **row})
        conn.execute(_INSERT_HISTORY, {"resource_type": rtype, "id": rid, **row})
        write_index(conn, stored, fresh=current is None)  # sql/reindex.py
        return stored

    def _stamp(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="milliseconds")

    # ------------------------------------------------------------------ reads

    @property
    def embedded(self) -> bool:
        """SQLite: reads are local file lookups of microseconds, cheaper than handing them
        to a worker thread (fhir/app.py runs reads by id on the event loop then)."""
        return self._engine.dialect.name == "sqlite"

    def get(self, resource_type: str, resource_id: str) -> StoredResource | None:
        if self.embedded:
            row = self._sqlite_get(resource_type, resource_id)
        else:
            with self._engine.connect() as conn:
                row = conn.execute(_GET, {"rtype": resource_type, "rid": resource_id}).first()
        if row is None:
            return None
        version_id, last_updated, content, deleted = row
        # ``content`` is the compact JSON a response would render (put(), sql/bulk.py),
        # parsed only when needed (StoredResource).
        return StoredResource(None, version_id, last_updated, bool(deleted), text=content)

    def _sqlite_get(self, resource_type: str, resource_id: str) -> Any:
        """The primary-key read straight on the pooled DBAPI connection: SQLAlchemy's
        execution layer costs several times the SQLite lookup itself, and this is the
        commonest request (bench/throughput.py). The columns need no conversion
        (``deleted`` is 0/1, made a bool by the caller)."""
        cursor = self._reader().cursor()
        try:
            cursor.execute(_GET_SQLITE, (resource_type, resource_id))
            return cursor.fetchone()
        finally:
            cursor.close()

    def _reader(self) -> Any:
        """This thread's own DBAPI connection for reads by id, kept checked out: a pool
        checkout and check-in cost as much as the lookup. A single SELECT opens no
        transaction under the sqlite3 module's default isolation, so every read sees the
        latest committed write (WAL mode, storage.py)."""
        raw = getattr(self._readers, "connection", None)
        if raw is None:
            raw = self._readers.connection = self._engine.raw_connection()
        return raw

    def search(self, resource_type: str, criteria: Sequence[Criterion], *, count: int,
               offset: int) -> tuple[list[dict[str, Any]], int]:
        found = self.page(PageQuery(resource_type, tuple(criteria), count, offset))
        return found.resources, found.total or 0

    def page(self, query: PageQuery) -> Page:
        with self._engine.connect() as conn:
            return run_page(conn, query)

    def vread(self, resource_type: str, resource_id: str,
              version_id: int) -> StoredResource | None:
        return versions.vread(self._engine, resource_type, resource_id, version_id)

    def history(self, query: HistoryQuery) -> tuple[list[StoredResource], int]:
        return versions.history_page(self._engine, query)

    def versions_matching(self, versions_: Sequence[StoredResource],
                          criteria: Sequence[Criterion]) -> list[bool]:
        return versions.versions_matching(self._engine, self._write, versions_, criteria)

    def is_empty(self) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(history.c.id).limit(1)).first() is None

    def count(self, resource_type: str | None = None) -> int:
        query = select(func.count()).select_from(resources).where(resources.c.deleted.is_(False))
        if resource_type is not None:
            query = query.where(resources.c.resource_type == resource_type)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


def _checked_copy(resource: dict[str, Any]) -> dict[str, Any]:
    """A copy with a valid type and id (a fresh UUID when absent); ValueError otherwise."""
    if not isinstance(resource, dict):
        raise ValueError("a resource must be a JSON object")
    return _checked(json.loads(json.dumps(resource)))


def _checked_top(resource: dict[str, Any]) -> dict[str, Any]:
    """``_checked_copy`` for bulk writes, which replace only top-level members (``id``,
    ``meta``) of what they store: a copy of the top level is enough, and a deep copy
    through JSON was a tenth of a load's time."""
    if not isinstance(resource, dict):
        raise ValueError("a resource must be a JSON object")
    return _checked(dict(resource))


def _checked(stored: dict[str, Any]) -> dict[str, Any]:
    resource_type = stored.get("resourceType")
    if not isinstance(resource_type, str) or not is_resource_type(resource_type):
        raise ValueError("resourceType is missing or invalid")
    stored.setdefault("id", str(uuid.uuid4()))
    if not isinstance(stored["id"], str) or not is_fhir_id(stored["id"]):
        raise ValueError(f"invalid resource id {stored['id']!r}")
    if not isinstance(stored.get("meta", {}), dict):
        raise ValueError("meta must be an object")
    return stored
