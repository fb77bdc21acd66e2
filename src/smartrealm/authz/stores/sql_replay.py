"""The replay cache behind private_key_jwt's ``jti`` rule (SMART §4.5, §13): a key is
recorded until it expires, and recording it again before then fails. The primary key makes
"first use" atomic across processes sharing the database.

One statement per use, on the token endpoint's hot path: an upsert (``INSERT … ON CONFLICT
DO UPDATE … WHERE``, SQLite ≥ 3.24 and PostgreSQL alike) that inserts a new key, takes over
an *expired* row of the same key, and changes nothing — no row returned — for a live one.
Expired rows of other keys go with the periodic purge (authz/maintenance.py)."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite


class SqlReplayCache:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._metadata = MetaData()
        self._t = Table("as_replay_cache", self._metadata,
                        Column("key_hash", String(64), primary_key=True),
                        Column("expires_at", Integer, nullable=False, index=True))
        insert: Any = (postgresql.insert if engine.dialect.name == "postgresql"
                       else sqlite.insert)(self._t)
        # Built once: statement construction costs more than running it.
        self._first_use = insert.values(
            key_hash=bindparam("key_hash"), expires_at=bindparam("expires_at"),
        ).on_conflict_do_update(
            index_elements=[self._t.c.key_hash],
            set_={"expires_at": insert.excluded.expires_at},
            where=self._t.c.expires_at <= bindparam("now"),
        ).returning(self._t.c.key_hash)  # a row back: recorded (rowcount is -1 on psycopg)

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
        with self._engine.begin() as conn:
            recorded = conn.execute(self._first_use, {"key_hash": digest,
                                                      "expires_at": expires_at, "now": now})
            return recorded.first() is not None
