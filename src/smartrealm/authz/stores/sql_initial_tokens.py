"""Initial access tokens (RFC 7591 §3) in SQL: only the SHA-256 of each value is stored, and a
use is spent by one conditional UPDATE, so concurrent registrations never spend more uses
than were issued."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    delete,
    select,
    update,
)

from smartrealm.authz.initial_tokens import InitialAccessToken
from smartrealm.core.defaults import INITIAL_TOKEN_RETENTION as RETENTION
from smartrealm.oauth.passwords import token_hash


class SqlInitialTokenStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._metadata = MetaData()
        self._t = Table("as_initial_access_tokens", self._metadata,
                        Column("token_hash", String(64), primary_key=True),
                        Column("id", String(16), nullable=False, unique=True),
                        Column("allows", Text, nullable=False),
                        Column("expires_at", Integer, nullable=False, index=True),
                        Column("uses_left", Integer, nullable=False),
                        Column("label", Text, nullable=False),
                        Column("created_at", Integer, nullable=False))

    @classmethod
    def create(cls, engine: Engine) -> SqlInitialTokenStore:
        store = cls(engine)
        store._metadata.create_all(engine)
        return store

    def issue(self, allows: frozenset[str], expires_at: int, uses: int, label: str,
              now: int) -> tuple[str, InitialAccessToken]:
        value = secrets.token_urlsafe(32)
        digest = token_hash(value)
        token = InitialAccessToken(digest[:16], allows, expires_at, uses, label, now)
        with self._engine.begin() as conn:
            conn.execute(delete(self._t).where(self._t.c.expires_at < now - RETENTION))
            conn.execute(self._t.insert().values(
                token_hash=digest, id=token.id, allows=" ".join(sorted(allows)),
                expires_at=expires_at, uses_left=uses, label=label, created_at=now))
        return value, token

    def find(self, value: str, now: int) -> InitialAccessToken | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(self._t).where(
                self._t.c.token_hash == token_hash(value))).one_or_none()
        token = _token(row) if row is not None else None
        return token if token is not None and token.active(now) else None

    def claim(self, value: str, now: int) -> InitialAccessToken | None:
        digest = token_hash(value)
        with self._engine.begin() as conn:
            spent = conn.execute(update(self._t).where(
                self._t.c.token_hash == digest, self._t.c.uses_left > 0,
                self._t.c.expires_at > now,
            ).values(uses_left=self._t.c.uses_left - 1)).rowcount
            if spent != 1:
                return None
            return _token(conn.execute(select(self._t).where(
                self._t.c.token_hash == digest)).one())

    def all(self) -> list[InitialAccessToken]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(self._t).order_by(self._t.c.created_at)).all()
        return [_token(r) for r in rows]

    def revoke(self, token_id: str) -> bool:
        with self._engine.begin() as conn:
            return bool(conn.execute(delete(self._t).where(self._t.c.id == token_id)).rowcount)


def _token(row: Row[Any]) -> InitialAccessToken:
    return InitialAccessToken(str(row.id), frozenset(str(row.allows).split()),
                              int(row.expires_at), int(row.uses_left), str(row.label),
                              int(row.created_at))
