"""Initial access tokens (RFC 7591 §3): how an operator lets a registration at ``/register``
have privileges that open registration never grants (``oauth.registration.PRIVILEGES``).

``smartrealm client initial-token`` issues one with what it allows, an expiry and a number
of uses; the client presents it as ``Authorization: Bearer`` (RFC 6750 §2.1). Only the
SHA-256 of the value is stored (it is 256 random bits, so a plain hash suffices, like codes):
a leaked table reveals no usable token. Each successful registration claims one use with a
conditional UPDATE, the one atomic step, so two concurrent registrations cannot both spend
the last use.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Protocol

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

from smartrealm.core.defaults import INITIAL_TOKEN_RETENTION as RETENTION
from smartrealm.oauth.passwords import token_hash


@dataclass(frozen=True)
class InitialAccessToken:
    id: str  # public handle for list and revoke: a prefix of the hash, never the value
    allows: frozenset[str]  # privileges (oauth.registration.PRIVILEGES)
    expires_at: int
    uses_left: int
    label: str
    created_at: int

    def active(self, now: int) -> bool:
        return self.uses_left > 0 and now < self.expires_at


class InitialTokenStore(Protocol):
    def issue(self, allows: frozenset[str], expires_at: int, uses: int, label: str,
              now: int) -> tuple[str, InitialAccessToken]:
        """Store a new token; returns (value, record). The value is never stored."""
        ...

    def find(self, value: str, now: int) -> InitialAccessToken | None:
        """The token when it is known and active (unexpired, uses left); else None."""
        ...

    def claim(self, value: str, now: int) -> InitialAccessToken | None:
        """Spend one use of an active token; None when there was none left to spend."""
        ...

    def all(self) -> list[InitialAccessToken]: ...

    def revoke(self, token_id: str) -> bool: ...


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
