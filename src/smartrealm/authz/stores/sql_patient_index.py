"""The realm-owned patient index in SQL (``as_patient_links``), written in batches below every
backend's bound-parameter limit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    select,
    tuple_,
)
from sqlalchemy.exc import DBAPIError

from smartrealm.authz.patient_index import BATCH, PatientLink
from smartrealm.realm.patient_links import linking_value as linking_value  # re-exported


class SqlPatientIndex:
    """Table ``as_patient_index`` (created on construction, idempotent)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        metadata = MetaData()
        self._t = Table(
            "as_patient_index", metadata,
            Column("server_id", String(255), primary_key=True),
            Column("patient_id", String(64), primary_key=True),
            Column("person", String(255), nullable=False),
            Column("source", String(16), nullable=False),
            Column("updated_at", Integer, nullable=False),
            Index("as_patient_index_person", "person", "server_id"))
        # The AS and `smartrealm load` may create the table at the same moment: the loser
        # sees "already exists" (SQLite) or a unique violation (PostgreSQL); then it exists.
        try:
            metadata.create_all(engine)
        except DBAPIError:
            metadata.create_all(engine)

    def link(self, links: Sequence[PatientLink]) -> int:
        t = self._t
        with self._engine.begin() as conn:
            for start in range(0, len(links), BATCH):
                batch = links[start:start + BATCH]
                keys = [(k.server_id, k.patient_id) for k in batch]
                # Delete then insert in one transaction: a portable upsert of a batch.
                conn.execute(delete(t).where(tuple_(t.c.server_id, t.c.patient_id).in_(keys)))
                conn.execute(t.insert(), [_row(k) for k in _last_per_key(batch)])
        return len(links)

    def unlink(self, server_id: str, patient_id: str) -> bool:
        t = self._t
        with self._engine.begin() as conn:
            return bool(conn.execute(delete(t).where(
                t.c.server_id == server_id, t.c.patient_id == patient_id)).rowcount)

    def person_of(self, server_id: str, patient_id: str) -> str | None:
        t = self._t
        with self._engine.connect() as conn:
            value = conn.execute(select(t.c.person).where(
                t.c.server_id == server_id, t.c.patient_id == patient_id)).scalar_one_or_none()
        return None if value is None else str(value)

    def records_of(self, person: str) -> list[PatientLink]:
        t = self._t
        with self._engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.person == person)
                                .order_by(t.c.server_id, t.c.patient_id)).all()
        return [_link(r) for r in rows]

    def on_server(self, server_id: str | None, *, limit: int, offset: int = 0
                  ) -> list[PatientLink]:
        t = self._t
        query = select(t).order_by(t.c.person, t.c.server_id, t.c.patient_id)
        if server_id is not None:
            query = query.where(t.c.server_id == server_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).all()
        return [_link(r) for r in rows]

    def count(self, server_id: str | None = None) -> int:
        t = self._t
        query = select(func.count()).select_from(t)
        if server_id is not None:
            query = query.where(t.c.server_id == server_id)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def replace_server(self, server_id: str, links: Sequence[PatientLink]) -> int:
        if any(k.server_id != server_id for k in links):
            raise ValueError(f"every link must be on server {server_id!r}")
        rows = [_row(k) for k in _last_per_key(links)]
        with self._engine.begin() as conn:
            conn.execute(delete(self._t).where(self._t.c.server_id == server_id))
            for start in range(0, len(rows), BATCH):
                conn.execute(self._t.insert(), rows[start:start + BATCH])
        return len(rows)


def _last_per_key(links: Iterable[PatientLink]) -> list[PatientLink]:
    """One link per (server, record): the last one given wins, like successive links."""
    return list({(k.server_id, k.patient_id): k for k in links}.values())


def _row(link: PatientLink) -> dict[str, Any]:
    return {"server_id": link.server_id, "patient_id": link.patient_id,
            "person": link.person, "source": link.source, "updated_at": link.updated_at}


def _link(row: Any) -> PatientLink:
    return PatientLink(row.server_id, row.patient_id, row.person, row.source, row.updated_at)
