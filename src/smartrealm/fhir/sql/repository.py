"""ResourceRepository on SQLAlchemy Core: SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update

from smartrealm.fhir.indexing import index_entries
from smartrealm.fhir.query import Criterion
from smartrealm.fhir.repository import StoredResource

from .predicates import criterion_sql, truncate
from .tables import history, metadata, resources, search_index

# http://hl7.org/fhir/R4/datatypes.html#id
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_TYPE = re.compile(r"^[A-Z][A-Za-z]{0,63}$")


def utc_now() -> datetime:
    return datetime.now(UTC)


class SqlResourceRepository:
    """One server's resources. ``clock`` stamps ``meta.lastUpdated`` (injectable for tests)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def create_tables(self) -> None:
        metadata.create_all(self._engine)

    # ------------------------------------------------------------------ writes

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        with self._engine.begin() as conn:
            return self._put(conn, resource, self._current_version(conn, resource))

    def bulk_load(self, resources_: Iterable[dict[str, Any]]) -> int:
        written = 0
        with self._engine.begin() as conn:
            for resource in resources_:
                self._put(conn, resource, self._current_version(conn, resource))
                written += 1
        return written

    def delete(self, resource_type: str, resource_id: str) -> bool:
        with self._engine.begin() as conn:
            row = conn.execute(select(resources.c.version_id, resources.c.content).where(
                _key(resource_type, resource_id), resources.c.deleted.is_(False))).first()
            if row is None:
                return False
            stamp = self._stamp()
            version = row.version_id + 1
            conn.execute(update(resources).where(_key(resource_type, resource_id)).values(
                version_id=version, last_updated=stamp, deleted=True))
            conn.execute(insert(history).values(
                resource_type=resource_type, id=resource_id, version_id=version,
                last_updated=stamp, content=row.content, deleted=True))
            conn.execute(delete(search_index).where(
                search_index.c.resource_type == resource_type,
                search_index.c.resource_id == resource_id))
        return True

    def _current_version(self, conn: Connection, resource: dict[str, Any]) -> int | None:
        resource_type, resource_id = resource.get("resourceType"), resource.get("id")
        if not isinstance(resource_type, str) or not isinstance(resource_id, str):
            return None
        return conn.execute(select(resources.c.version_id).where(
            _key(resource_type, resource_id))).scalar_one_or_none()

    def _put(self, conn: Connection, resource: dict[str, Any],
             current: int | None) -> dict[str, Any]:
        stored = _checked_copy(resource)
        version = (current or 0) + 1
        stamp = self._stamp()
        stored["meta"] = {**stored.get("meta", {}), "versionId": str(version),
                          "lastUpdated": stamp}
        rtype, rid = stored["resourceType"], stored["id"]
        row = {"version_id": version, "last_updated": stamp, "deleted": False,
               "content": json.dumps(stored, separators=(",", ":"), ensure_ascii=False)}
        if current is None:
            conn.execute(insert(resources).values(resource_type=rtype, id=rid, **row))
        else:
            conn.execute(update(resources).where(_key(rtype, rid)).values(**row))
        conn.execute(insert(history).values(resource_type=rtype, id=rid, **row))
        self._reindex(conn, stored)
        return stored

    def _reindex(self, conn: Connection, resource: dict[str, Any]) -> None:
        rtype, rid = resource["resourceType"], resource["id"]
        conn.execute(delete(search_index).where(search_index.c.resource_type == rtype,
                                                search_index.c.resource_id == rid))
        rows = [{"resource_type": rtype, "resource_id": rid, "param": e.param,
                 "system": truncate(e.system), "value": truncate(e.value),
                 "ref_type": e.ref_type, "ref_id": e.ref_id}
                for e in index_entries(resource)]
        if rows:
            conn.execute(insert(search_index), rows)

    def _stamp(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="milliseconds")

    # ------------------------------------------------------------------ reads

    def get(self, resource_type: str, resource_id: str) -> StoredResource | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(resources).where(_key(resource_type, resource_id))).first()
        if row is None:
            return None
        return StoredResource(json.loads(row.content), row.version_id, row.last_updated,
                              bool(row.deleted))

    def search(self, resource_type: str, criteria: Sequence[Criterion], *, count: int,
               offset: int) -> tuple[list[dict[str, Any]], int]:
        where = and_(resources.c.resource_type == resource_type,
                     resources.c.deleted.is_(False),
                     *(criterion_sql(resource_type, c) for c in criteria))
        with self._engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(resources).where(where))
            total_count = int(total.scalar_one())
            if count <= 0 or offset >= total_count:
                return [], total_count
            rows = conn.execute(select(resources.c.content).where(where)
                                .order_by(resources.c.id).limit(count).offset(offset))
            return [json.loads(r.content) for r in rows], total_count

    def is_empty(self) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(history.c.id).limit(1)).first() is None

    def count(self, resource_type: str | None = None) -> int:
        query = select(func.count()).select_from(resources).where(resources.c.deleted.is_(False))
        if resource_type is not None:
            query = query.where(resources.c.resource_type == resource_type)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


def _key(resource_type: str, resource_id: str) -> Any:
    return and_(resources.c.resource_type == resource_type, resources.c.id == resource_id)


def _checked_copy(resource: dict[str, Any]) -> dict[str, Any]:
    """A copy with a valid type and id (a fresh UUID when absent); ValueError otherwise."""
    if not isinstance(resource, dict):
        raise ValueError("a resource must be a JSON object")
    stored: dict[str, Any] = json.loads(json.dumps(resource))
    resource_type = stored.get("resourceType")
    if not isinstance(resource_type, str) or not _TYPE.match(resource_type):
        raise ValueError("resourceType is missing or invalid")
    stored.setdefault("id", str(uuid.uuid4()))
    if not isinstance(stored["id"], str) or not FHIR_ID.match(stored["id"]):
        raise ValueError(f"invalid resource id {stored['id']!r}")
    if not isinstance(stored.get("meta", {}), dict):
        raise ValueError("meta must be an object")
    return stored
