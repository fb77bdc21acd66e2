"""EHR launches (single-use), the apps' launch URLs and the EHR simulator's sessions, in SQL."""

from __future__ import annotations

import json

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from smartrealm.authz.launch_store import EhrSession, EhrStores
from smartrealm.authz.stores import sql_single_use
from smartrealm.core.defaults import LAUNCH_RETENTION as RETENTION
from smartrealm.oauth.launch import LaunchContext


class _Tables:
    def __init__(self) -> None:
        self.metadata = m = MetaData()
        self.launches = Table(
            "as_launches", m,
            Column("id_hash", String(64), primary_key=True),
            Column("data", Text, nullable=False),
            Column("expires_at", Integer, nullable=False, index=True),
            Column("used", Boolean, nullable=False))
        self.app_urls = Table(
            "as_client_launch_urls", m,
            Column("client_id", String(255), primary_key=True),
            Column("launch_url", Text, nullable=False))
        self.sessions = Table(
            "as_ehr_sessions", m,
            Column("key_hash", String(64), primary_key=True),
            Column("data", Text, nullable=False),
            Column("expires_at", Integer, nullable=False, index=True))


class SqlLaunchStore:
    def __init__(self, engine: Engine, table: Table) -> None:
        self._engine, self._t = engine, table

    def save(self, id_hash: str, launch: LaunchContext) -> None:
        sql_single_use.store(self._engine, self._t, RETENTION, id_hash=id_hash,
                         data=json.dumps(launch.to_dict()), expires_at=launch.expires_at)

    def claim(self, id_hash: str, now: int) -> LaunchContext | None:
        row = sql_single_use.claim(self._engine, self._t, "id_hash", id_hash, now)
        return None if row is None else LaunchContext.from_dict(json.loads(row.data))

    def purge(self, now: int) -> int:
        with self._engine.begin() as conn:
            return int(conn.execute(delete(self._t).where(self._t.c.expires_at <= now)
                                    ).rowcount)


class SqlAppLaunchStore:
    def __init__(self, engine: Engine, table: Table) -> None:
        self._engine, self._t = engine, table

    def put(self, client_id: str, launch_url: str) -> None:
        where = self._t.c.client_id == client_id
        with self._engine.begin() as conn:
            if conn.execute(update(self._t).where(where).values(launch_url=launch_url)
                            ).rowcount:
                return
        try:
            with self._engine.begin() as conn:
                conn.execute(self._t.insert().values(client_id=client_id,
                                                     launch_url=launch_url))
        except IntegrityError:  # another process inserted first: its row, our value
            with self._engine.begin() as conn:
                conn.execute(update(self._t).where(where).values(launch_url=launch_url))

    def get(self, client_id: str) -> str | None:
        with self._engine.connect() as conn:
            value = conn.execute(select(self._t.c.launch_url).where(
                self._t.c.client_id == client_id)).scalar_one_or_none()
        return None if value is None else str(value)

    def all(self) -> list[tuple[str, str]]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(self._t.c.client_id, self._t.c.launch_url)
                                .order_by(self._t.c.client_id)).all()
        return [(str(r.client_id), str(r.launch_url)) for r in rows]

    def delete(self, client_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(self._t).where(self._t.c.client_id == client_id))


class SqlEhrSessionStore:
    def __init__(self, engine: Engine, table: Table) -> None:
        self._engine, self._t = engine, table

    @staticmethod
    def _json(session: EhrSession) -> str:
        return json.dumps({"csrf": session.csrf, "expires_at": session.expires_at,
                           "username": session.username})

    def create(self, key_hash: str, session: EhrSession) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(self._t).where(
                self._t.c.expires_at < session.expires_at - 2 * RETENTION))
            conn.execute(self._t.insert().values(key_hash=key_hash, data=self._json(session),
                                                 expires_at=session.expires_at))

    def get(self, key_hash: str, now: int) -> EhrSession | None:
        query = select(self._t.c.data).where(self._t.c.key_hash == key_hash,
                                              self._t.c.expires_at > now)
        with self._engine.connect() as conn:
            data = conn.execute(query).scalar_one_or_none()
        return None if data is None else EhrSession(**json.loads(data))

    def update(self, key_hash: str, session: EhrSession) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(self._t).where(self._t.c.key_hash == key_hash).values(
                data=self._json(session), expires_at=session.expires_at))

    def delete(self, key_hash: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(self._t).where(self._t.c.key_hash == key_hash))

    def purge(self, now: int) -> int:
        with self._engine.begin() as conn:
            return int(conn.execute(delete(self._t).where(self._t.c.expires_at <= now)
                                    ).rowcount)


def sql_ehr_stores(engine: Engine) -> EhrStores:
    """Create the tables (idempotent) and return the three stores on ``engine``."""
    tables = _Tables()
    tables.metadata.create_all(engine)
    return EhrStores(launches=SqlLaunchStore(engine, tables.launches),
                     app_launch_urls=SqlAppLaunchStore(engine, tables.app_urls),
                     sessions=SqlEhrSessionStore(engine, tables.sessions))
