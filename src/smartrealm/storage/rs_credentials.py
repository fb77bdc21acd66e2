"""The secrets of the realm's resource servers as clients of the AS (``core.rs_clients``):
a random 256-bit secret per server.

The secrets live in table ``as_resource_server_credentials`` of the AS's database (the realm
database, component ``auth``). Whichever process starts first — the AS, or a resource server
in introspection mode — creates a server's secret; both then read the same row. Secrets are
stored as they are: whoever can read the AS's database can read its signing keys too, so a
hash would protect nothing. They are never printed or logged.
"""

from __future__ import annotations

import secrets
import time
from typing import Protocol

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, Text, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine


class RsCredentialStore(Protocol):
    def secret(self, server_id: str) -> str | None: ...

    def ensure(self, server_id: str) -> str: ...


class SqlRsCredentials:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._metadata = MetaData()
        self._t = Table("as_resource_server_credentials", self._metadata,
                        Column("server_id", String(255), primary_key=True),
                        Column("secret", Text, nullable=False),
                        Column("created_at", Integer, nullable=False))

    def create_tables(self) -> None:
        # The AS and an introspection-mode FHIR server start at the same moment and may both
        # create this table: the loser of that race gets "already exists" (SQLite) or a
        # unique violation (PostgreSQL). The table exists then, so checking again settles it.
        try:
            self._metadata.create_all(self._engine)
        except DBAPIError:
            self._metadata.create_all(self._engine)

    def secret(self, server_id: str) -> str | None:
        with self._engine.connect() as conn:
            value = conn.execute(select(self._t.c.secret).where(
                self._t.c.server_id == server_id)).scalar_one_or_none()
        return None if value is None else str(value)

    def ensure(self, server_id: str) -> str:
        """The server's secret, created now if it has none (safe against a concurrent
        creator: the first insert wins and everyone reads it)."""
        existing = self.secret(server_id)
        if existing is not None:
            return existing
        try:
            with self._engine.begin() as conn:
                conn.execute(self._t.insert().values(
                    server_id=server_id, secret=secrets.token_urlsafe(32),
                    created_at=int(time.time())))
        except IntegrityError:
            pass
        stored = self.secret(server_id)
        assert stored is not None
        return stored


def ensure_all(realm: RealmConfig, store: RsCredentialStore) -> None:
    """Give every resource server of the realm its secret (the AS, at start-up)."""
    for rs in realm.resource_servers:
        store.ensure(rs.id)


def sql_rs_credentials(engine: Engine) -> SqlRsCredentials:
    store = SqlRsCredentials(engine)
    store.create_tables()
    return store


def resource_server_secret(realm: RealmConfig, server_id: str) -> str:
    """What a resource server process uses to authenticate to the AS (introspection,
    patient-index reports)."""
    realm.server(server_id)  # KeyError for a server the realm does not have
    engine = make_engine(realm.database_url_for(None))
    try:
        return sql_rs_credentials(engine).ensure(server_id)
    finally:
        engine.dispose()
