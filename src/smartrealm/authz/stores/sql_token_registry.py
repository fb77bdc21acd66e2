"""SQLAlchemy Core implementation of the access-token registry (SQLite and PostgreSQL alike),
tables ``as_access_tokens`` and ``as_code_families`` in the AS's database."""

from __future__ import annotations

import json
from typing import Any

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
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from smartrealm.oauth.token_registry import AccessTokenRecord, CodeLink


class SqlTokenRegistry:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._metadata = MetaData()
        self._tokens = Table(
            "as_access_tokens", self._metadata,
            Column("jti", String(128), primary_key=True),
            Column("family", String(128), nullable=False, index=True),
            Column("client_id", String(255), nullable=False),
            Column("issued_at", Integer, nullable=False),
            Column("expires_at", Integer, nullable=False, index=True),
            Column("context", Text, nullable=False),
            Column("revoked", Boolean, nullable=False))
        self._codes = Table(
            "as_code_families", self._metadata,
            Column("code_hash", String(64), primary_key=True),
            Column("family", String(128), nullable=False),
            Column("expires_at", Integer, nullable=False, index=True))
        self._insert = self._tokens.insert()
        insert: Any = (postgresql.insert if engine.dialect.name == "postgresql"
                       else sqlite.insert)(self._codes)
        # A code starts exactly one family: a second link (impossible while codes are single
        # use) keeps the first, without failing the transaction it is part of.
        self._link = insert.on_conflict_do_nothing(index_elements=[self._codes.c.code_hash])

    def create_tables(self) -> None:
        self._metadata.create_all(self._engine)

    def record(self, token: AccessTokenRecord, started_by: CodeLink | None = None) -> None:
        # One transaction per token issued (a commit costs more than the inserts); the
        # statements are built once (self._insert, self._link).
        with self._engine.begin() as conn:
            conn.execute(self._insert, {
                "jti": token.jti, "family": token.family, "client_id": token.client_id,
                "issued_at": token.issued_at, "expires_at": token.expires_at,
                "context": json.dumps(token.context), "revoked": token.revoked})
            if started_by is not None:
                conn.execute(self._link, {"code_hash": started_by.code_hash,
                                          "family": token.family,
                                          "expires_at": started_by.expires_at})

    def get(self, jti: str) -> AccessTokenRecord | None:
        t = self._tokens
        with self._engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.jti == jti)).first()
        return None if row is None else _record(row)

    def revoke(self, jti: str) -> bool:
        t = self._tokens
        with self._engine.begin() as conn:
            return bool(conn.execute(update(t).where(t.c.jti == jti)
                                     .values(revoked=True)).rowcount)

    def revoke_family(self, family: str) -> int:
        t = self._tokens
        with self._engine.begin() as conn:
            return int(conn.execute(update(t).where(t.c.family == family, t.c.revoked.is_(False))
                                    .values(revoked=True)).rowcount)

    def link_code(self, code_hash: str, family: str, expires_at: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(self._link, {"code_hash": code_hash, "family": family,
                                      "expires_at": expires_at})

    def family_of_code(self, code_hash: str) -> str | None:
        c = self._codes
        with self._engine.connect() as conn:
            family = conn.execute(select(c.c.family).where(c.c.code_hash == code_hash)
                                  ).scalar_one_or_none()
        return None if family is None else str(family)

    def purge(self, now: int) -> int:
        # A revoked row can go at once: an unknown jti is inactive too.
        t, c = self._tokens, self._codes
        with self._engine.begin() as conn:
            tokens = conn.execute(delete(t).where(or_(t.c.expires_at <= now,
                                                      t.c.revoked.is_(True)))).rowcount
            codes = conn.execute(delete(c).where(c.c.expires_at <= now)).rowcount
        return int(tokens) + int(codes)


def _record(row: Any) -> AccessTokenRecord:
    return AccessTokenRecord(jti=row.jti, family=row.family, client_id=row.client_id,
                             issued_at=row.issued_at, expires_at=row.expires_at,
                             context=json.loads(row.context), revoked=bool(row.revoked))


def sql_token_registry(engine: Engine) -> SqlTokenRegistry:
    registry = SqlTokenRegistry(engine)
    registry.create_tables()
    return registry
