"""Remembered consents and the apps holding a user's refresh tokens, in SQL (tables
``as_consents``, and the refresh-token table read for the management page)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
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

from smartrealm.authz.consent_store import AppAccess, RememberedConsent


class SqlConsentStore:
    """Table ``as_consents`` (created on construction, idempotent)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._t = Table(
            "as_consents", MetaData(),
            Column("username", String(255), primary_key=True),
            Column("client_id", String(255), primary_key=True),
            Column("data", Text, nullable=False),
            Column("updated_at", Integer, nullable=False))
        self._t.create(engine, checkfirst=True)

    def _where(self, username: str, client_id: str) -> Any:
        return (self._t.c.username == username) & (self._t.c.client_id == client_id)

    def get(self, username: str, client_id: str) -> RememberedConsent | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(self._t).where(self._where(username, client_id))).first()
        return None if row is None else RememberedConsent.from_row(
            row.username, row.client_id, row.data, row.updated_at)

    def put(self, consent: RememberedConsent) -> None:
        where = self._where(consent.username, consent.client_id)
        values = {"data": consent.to_json(), "updated_at": consent.updated_at}
        with self._engine.begin() as conn:
            if conn.execute(update(self._t).where(where).values(**values)).rowcount:
                return
        try:
            with self._engine.begin() as conn:
                conn.execute(self._t.insert().values(
                    username=consent.username, client_id=consent.client_id, **values))
        except IntegrityError:  # a concurrent approval inserted first: last one wins
            with self._engine.begin() as conn:
                conn.execute(update(self._t).where(where).values(**values))

    def list_for(self, username: str) -> list[RememberedConsent]:
        query = select(self._t).where(self._t.c.username == username).order_by(
            self._t.c.client_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [RememberedConsent.from_row(r.username, r.client_id, r.data, r.updated_at)
                for r in rows]

    def delete(self, username: str, client_id: str) -> bool:
        with self._engine.begin() as conn:
            return bool(conn.execute(
                delete(self._t).where(self._where(username, client_id))).rowcount)


class SqlAppAccessStore:
    """Reads the refresh-token table of sql_stores (``table``): a family's live token is
    its one unused, unrevoked, unexpired row; the user is the grant's ``subject``."""

    def __init__(self, engine: Engine, table: Table) -> None:
        self._engine, self._t = engine, table

    def _live(self, username: str, now: int, client_id: str | None = None) -> list[Any]:
        t = self._t
        query = select(t.c.family, t.c.client_id, t.c.data, t.c.expires_at).where(
            t.c.used.is_(False), t.c.revoked.is_(False), t.c.expires_at > now)
        if client_id is not None:
            query = query.where(t.c.client_id == client_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.client_id)).all()
        return [r for r in rows if json.loads(r.data).get("subject") == username]

    def active(self, username: str, now: int) -> list[AppAccess]:
        apps: dict[str, AppAccess] = {}
        for row in self._live(username, now):
            grant = json.loads(row.data)
            scope = " ".join(dict.fromkeys(
                [t for s in grant["servers"] for t in s["scopes"]] + grant["identity_scopes"]))
            seen = apps.get(row.client_id)
            apps[row.client_id] = AppAccess(
                row.client_id, (seen.grants if seen else 0) + 1, scope,
                max(row.expires_at, seen.expires_at if seen else 0))
        return list(apps.values())

    def revoke(self, username: str, client_id: str, now: int) -> list[str]:
        families = sorted({row.family for row in self._live(username, now, client_id)})
        if families:
            with self._engine.begin() as conn:
                conn.execute(update(self._t).where(self._t.c.family.in_(families))
                             .values(revoked=True))
        return families
