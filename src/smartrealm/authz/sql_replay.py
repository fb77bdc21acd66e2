"""The replay cache behind private_key_jwt's ``jti`` rule (SMART §4.5, §13): a key is
recorded until it expires, and recording it again before then fails. The primary key makes
"first use" atomic across processes sharing the database."""

from __future__ import annotations

import hashlib

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, delete
from sqlalchemy.exc import IntegrityError


class SqlReplayCache:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._metadata = MetaData()
        self._t = Table("as_replay_cache", self._metadata,
                        Column("key_hash", String(64), primary_key=True),
                        Column("expires_at", Integer, nullable=False, index=True))

    @classmethod
    def create(cls, engine: Engine) -> SqlReplayCache:
        cache = cls(engine)
        cache._metadata.create_all(engine)
        return cache

    def purge(self, now: int) -> int:
        """Delete expired entries (authz/maintenance.py runs it with the other stores): a
        key that is never presented again would otherwise stay for ever."""
        with self._engine.begin() as conn:
            return conn.execute(delete(self._t).where(self._t.c.expires_at <= now)).rowcount

    def first_use(self, key: str, expires_at: int, now: int) -> bool:
        digest = hashlib.sha256(key.encode()).hexdigest()
        # Expired rows go first (this key's included), in their own transaction: on
        # PostgreSQL a failed INSERT aborts the transaction it runs in.
        with self._engine.begin() as conn:
            conn.execute(delete(self._t).where(self._t.c.expires_at <= now))
        try:
            with self._engine.begin() as conn:
                conn.execute(self._t.insert().values(key_hash=digest, expires_at=expires_at))
        except IntegrityError:
            return False
        return True
