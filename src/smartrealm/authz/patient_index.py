"""The realm's patient index: which record on which server belongs to one person.

A multi-server token carries the in-context patient's id on every server of its audience.
The AS finds those ids here and nowhere else — never in what a FHIR server's Patient says
at authorization time, because a patient-facing app may be able to write that Patient. A row
says "record ``patient_id`` on server ``server_id`` is person ``person``", the person being
the value of the realm's patient identifier (``realm.patient_identifier_system``, e.g. an
MRN) when the link was made.

Who writes rows (docs/behaviour.md "Linking a patient's records across servers"): only
trusted paths — ``smartrealm load`` for the Patients it stores, the sample data of a realm
with ``sample_data``, an operator with ``smartrealm patients``, and a built-in FHIR server
reporting a committed ``system/``-level write that changed a Patient's linking identifier
(authz/views/patient_links.py, for that server's own records only). No patient- or user-level
FHIR write changes a row: those may not change the linking identifier at all.

Fail closed: a record without a row has no counterpart anywhere; a person with no record,
or more than one, on a server has no patient there (a data problem is never guessed at).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

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

from smartrealm.core.urls import normalize_url
from smartrealm.realm.config import RealmConfig
from smartrealm.realm.patient_links import linking_value as linking_value  # re-exported
from smartrealm.realm.sample_data import ID_PREFIX, mrn, patient_id

# Where a link came from (shown by `smartrealm patients`): an operator needs to know
# whether a row is theirs or a loader's before changing it.
SOURCES = ("load", "operator", "sample", "rebuild", "system-write")
BATCH = 500  # rows per statement: well below every backend's bound-parameter limit


@dataclass(frozen=True)
class PatientLink:
    server_id: str
    patient_id: str
    person: str       # the realm identifier's value (the MRN) that links the records
    source: str = "operator"
    updated_at: int = 0


class PatientIndex(Protocol):
    def link(self, links: Sequence[PatientLink]) -> int:
        """Add or replace the rows of these (server, record) pairs; returns how many."""
        ...

    def unlink(self, server_id: str, patient_id: str) -> bool: ...

    def person_of(self, server_id: str, patient_id: str) -> str | None: ...

    def records_of(self, person: str) -> list[PatientLink]: ...

    def on_server(self, server_id: str | None, *, limit: int, offset: int = 0
                  ) -> list[PatientLink]: ...

    def count(self, server_id: str | None = None) -> int: ...

    def replace_server(self, server_id: str, links: Sequence[PatientLink]) -> int:
        """Every row of ``server_id`` becomes exactly ``links`` (one transaction)."""
        ...


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


# ------------------------------------------------------------------------- reading records


def links_from(resources: Iterable[Any], server_id: str, system: str, source: str,
               now: int) -> list[PatientLink]:
    """The links of the Patients among ``resources`` (stored on ``server_id``)."""
    links = []
    for resource in resources:
        person = linking_value(resource, system)
        if person is not None and isinstance(resource.get("id"), str):
            links.append(PatientLink(server_id, resource["id"], person, source, now))
    return links


# ------------------------------------------------------------------------- the sample data


def seed_sample_links(realm: RealmConfig, index: PatientIndex, now: int) -> int:
    """With ``realm.sample_data``, link the sample patients of every built-in server that
    has no links yet (the same ids and MRNs realm/sample_data.py seeds its store with), and
    of every proxy in front of such a server (the same records under the proxy's base).
    A server with links keeps them: what an operator or a load decided is not undone by a
    restart. A proxy in front of anything else is never guessed at (`smartrealm patients`)."""
    if not realm.sample_data:
        return 0
    seeded = {normalize_url(rs.base_url): rs for rs in realm.resource_servers
              if rs.mode == "server" and rs.profile in ID_PREFIX}
    added = 0
    for rs in realm.resource_servers:
        source = rs if rs.mode == "server" else seeded.get(normalize_url(rs.upstream or "-"))
        if source is None or source.profile not in ID_PREFIX or index.count(rs.id):
            continue
        added += index.link([PatientLink(rs.id, patient_id(source.profile, n), mrn(n),
                                         "sample", now)
                             for n in range(1, realm.sample_patients + 1)])
    return added
