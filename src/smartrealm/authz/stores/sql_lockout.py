"""Sign-in and client-authentication failure counts in SQL (``as_login_failures`` and its
client twin): one upsert per failure, so concurrent failures all count."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    case,
    delete,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from smartrealm.authz.lockout import FailureCount, LoginPolicy
from smartrealm.core.defaults import LOGIN_FAILURE_PURGE_AFTER as PURGE_AFTER
from smartrealm.oauth.passwords import token_hash


class SqlLoginFailureStore:
    """Table ``as_login_failures`` (created on construction, idempotent). The same rules
    count failed client authentications in their own table (authz/client_guard.py)."""

    def __init__(self, engine: Engine, table: str = "as_login_failures") -> None:
        self._engine = engine
        self._t = Table(
            table, MetaData(),
            Column("user_key", String(64), primary_key=True),
            Column("failures", Integer, nullable=False),
            Column("window_start", Integer, nullable=False),
            Column("locked_until", Integer, nullable=False),
            Column("last_seen", Integer, nullable=False, index=True))
        self._t.create(engine, checkfirst=True)

    def locked_until(self, username: str, now: int) -> int:
        query = select(self._t.c.locked_until).where(self._t.c.user_key == token_hash(username))
        with self._engine.connect() as conn:
            until = conn.execute(query).scalar_one_or_none()
        return until if until is not None and until > now else 0

    def count(self, username: str, now: int) -> FailureCount:
        t = self._t
        query = select(t.c.failures, t.c.locked_until).where(t.c.user_key == token_hash(username))
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return FailureCount(0, 0)
        return FailureCount(row.failures, row.locked_until if row.locked_until > now else 0)

    def record_failure(self, username: str, now: int, policy: LoginPolicy) -> FailureCount:
        key = token_hash(username)
        if not self._increment(key, now, policy):
            try:
                with self._engine.begin() as conn:
                    conn.execute(delete(self._t).where(self._t.c.last_seen < now - PURGE_AFTER))
                    conn.execute(self._t.insert().values(
                        user_key=key, failures=1, window_start=now, locked_until=0,
                        last_seen=now))
            except IntegrityError:  # another process inserted first: count on its row
                self._increment(key, now, policy)
        return self._lock_if_due(key, now, policy)

    def _increment(self, key: str, now: int, policy: LoginPolicy) -> bool:
        t = self._t
        stale = t.c.window_start < now - policy.window
        statement = update(t).where(t.c.user_key == key).values(
            failures=case((stale, 1), else_=t.c.failures + 1),
            window_start=case((stale, now), else_=t.c.window_start), last_seen=now)
        with self._engine.begin() as conn:
            return bool(conn.execute(statement).rowcount)

    def _lock_if_due(self, key: str, now: int, policy: LoginPolicy) -> FailureCount:
        t = self._t
        with self._engine.begin() as conn:
            # Only the update that crosses the threshold starts the lock (and resets the
            # count), so concurrent failures cannot extend it.
            locked = conn.execute(update(t).where(
                t.c.user_key == key, t.c.failures >= policy.max_failures,
            ).values(failures=0, window_start=now, locked_until=now + policy.lock_seconds)
            ).rowcount
            row = conn.execute(select(t.c.failures, t.c.locked_until)
                               .where(t.c.user_key == key)).one()
        until = row.locked_until if locked or row.locked_until > now else 0
        return FailureCount(policy.max_failures if locked else row.failures, until)

    def clear(self, username: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(self._t).where(self._t.c.user_key == token_hash(username)))
