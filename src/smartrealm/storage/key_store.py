"""The AS's signing keys (``oauth.keys``) in the realm database: tables ``as_signing_keys`` and
``as_secret_keys``."""

from __future__ import annotations

import base64
import time

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, Text, delete, func, select
from sqlalchemy.exc import IntegrityError

from smartrealm.oauth.keys import SigningKey, key_from_json, key_to_json, new_secret_key


class SqlKeyStore:
    """Keys in table ``as_signing_keys`` of the realm database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._metadata = MetaData()
        self._table = Table(
            "as_signing_keys", self._metadata,
            Column("kid", String(128), primary_key=True),
            Column("created_at", Integer, nullable=False),
            Column("key_json", Text, nullable=False),
        )
        self._secret_keys = Table(
            "as_secret_keys", self._metadata,
            Column("name", String(128), primary_key=True),
            Column("key_b64", Text, nullable=False),
            Column("created_at", Integer, nullable=False),
        )

    def create_tables(self) -> None:
        self._metadata.create_all(self._engine)

    def load(self) -> list[SigningKey]:
        query = select(self._table.c.key_json).order_by(self._table.c.created_at)
        with self._engine.connect() as conn:
            return [key_from_json(row.key_json) for row in conn.execute(query)]

    def add(self, key: SigningKey) -> None:
        with self._engine.begin() as conn:
            conn.execute(self._table.insert().values(
                kid=key.kid, created_at=key.created_at, key_json=key_to_json(key)))

    def remove(self, kid: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(self._table).where(self._table.c.kid == kid))

    def version(self) -> str:
        t = self._table
        with self._engine.connect() as conn:
            count, newest = conn.execute(select(func.count(), func.max(t.c.created_at))).one()
        return f"{count}:{newest}"

    def secret_key(self, name: str) -> bytes:
        t = self._secret_keys
        query = select(t.c.key_b64).where(t.c.name == name)
        with self._engine.connect() as conn:
            found = conn.execute(query).scalar_one_or_none()
        if found is None:
            try:
                with self._engine.begin() as conn:
                    conn.execute(t.insert().values(name=name, key_b64=new_secret_key(),
                                                   created_at=int(time.time())))
            except IntegrityError:
                pass  # another process created it first: use that one
            with self._engine.connect() as conn:
                found = conn.execute(query).scalar_one()
        return base64.b64decode(found)
