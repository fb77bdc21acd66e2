"""SQLAlchemy Core implementations of the AS stores (SQLite and PostgreSQL alike). Tables
are prefixed ``as_`` because they share the realm database with the resource servers."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from smartrealm.authz.records import Interaction, Stores, User
from smartrealm.authz.stores import sql_single_use
from smartrealm.authz.stores.sql_consent import SqlAppAccessStore, SqlConsentStore
from smartrealm.authz.stores.sql_initial_tokens import SqlInitialTokenStore
from smartrealm.authz.stores.sql_launch import sql_ehr_stores
from smartrealm.authz.stores.sql_lockout import SqlLoginFailureStore
from smartrealm.authz.stores.sql_patient_index import SqlPatientIndex
from smartrealm.authz.stores.sql_replay import SqlReplayCache
from smartrealm.authz.stores.sql_token_registry import sql_token_registry
from smartrealm.core.defaults import CODE_RETENTION, REFRESH_RETENTION
from smartrealm.oauth.grants import Grant
from smartrealm.oauth.store import (
    DEFAULT_GRANT_TYPES,
    AuthorizationCode,
    Client,
    RefreshToken,
    RefreshTokenState,
)
from smartrealm.storage import add_missing_columns
from smartrealm.storage.rs_credentials import sql_rs_credentials
from smartrealm.storage.schema import AUTH_SCHEMA, stamp_if_new


class Tables:
    def __init__(self) -> None:
        self.metadata = MetaData()
        m = self.metadata
        self.clients = Table(
            "as_clients", m,
            Column("client_id", String(255), primary_key=True),
            Column("name", Text, nullable=False),
            Column("redirect_uris", Text, nullable=False),
            Column("auth_method", String(64), nullable=False),
            Column("secret_hash", Text),
            Column("scope", Text, nullable=False),
            Column("allowed_servers", Text, nullable=False),
            Column("created_at", Integer, nullable=False),
            # Added with private_key_jwt and client_credentials: nullable, so that
            # add_missing_columns can extend databases created before them.
            Column("grant_types", Text),
            Column("jwks", Text),
            Column("jwks_uri", Text))
        self.users = Table(
            "as_users", m,
            Column("username", String(255), primary_key=True),
            Column("password_hash", Text, nullable=False),
            Column("display_name", Text, nullable=False),
            Column("fhir_user_server", String(255), nullable=False),
            Column("fhir_user", Text, nullable=False))
        self.codes = Table(
            "as_authorization_codes", m,
            Column("code_hash", String(64), primary_key=True),
            Column("client_id", String(255), nullable=False),
            Column("data", Text, nullable=False),
            Column("expires_at", Integer, nullable=False, index=True),
            Column("used", Boolean, nullable=False))
        self.refresh_tokens = Table(
            "as_refresh_tokens", m,
            Column("token_hash", String(64), primary_key=True),
            Column("family", String(64), nullable=False, index=True),
            Column("client_id", String(255), nullable=False),
            Column("data", Text, nullable=False),
            Column("expires_at", Integer, nullable=False, index=True),
            Column("used", Boolean, nullable=False),
            Column("revoked", Boolean, nullable=False))
        self.interactions = Table(
            "as_interactions", m,
            Column("key_hash", String(64), primary_key=True),
            Column("data", Text, nullable=False),
            Column("expires_at", Integer, nullable=False, index=True))


def _upsert(engine: Engine, table: Table, key: str, values: dict[str, Any]) -> None:
    """Update, else insert; retry the update if another process inserted first."""
    where = table.c[key] == values[key]
    with engine.begin() as conn:
        if conn.execute(update(table).where(where).values(**values)).rowcount:
            return
    try:
        with engine.begin() as conn:
            conn.execute(table.insert().values(**values))
    except IntegrityError:
        with engine.begin() as conn:
            conn.execute(update(table).where(where).values(**values))


class SqlClientStore:
    def __init__(self, engine: Engine, tables: Tables) -> None:
        self._engine, self._t = engine, tables.clients
        # Built once (every authenticated request looks a client up): building a statement
        # costs several times more than running it.
        self._get = select(self._t).where(self._t.c.client_id == bindparam("client_id"))

    def get(self, client_id: str) -> Client | None:
        with self._engine.connect() as conn:
            row = conn.execute(self._get, {"client_id": client_id}).first()
        return None if row is None else _client(row)

    def all(self) -> list[Client]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(self._t).order_by(self._t.c.client_id)).all()
        return [_client(row) for row in rows]

    def delete(self, client_id: str) -> bool:
        with self._engine.begin() as conn:
            return bool(conn.execute(
                delete(self._t).where(self._t.c.client_id == client_id)).rowcount)

    def replace_secret_hash(self, client_id: str, old: str, new: str) -> bool:
        t = self._t
        with self._engine.begin() as conn:
            return bool(conn.execute(update(t).where(
                t.c.client_id == client_id, t.c.secret_hash == old).values(secret_hash=new)
            ).rowcount)

    def put(self, client: Client) -> None:
        _upsert(self._engine, self._t, "client_id", {
            "client_id": client.client_id, "name": client.name,
            "redirect_uris": json.dumps(list(client.redirect_uris)),
            "auth_method": client.auth_method, "secret_hash": client.secret_hash,
            "scope": client.scope, "allowed_servers": json.dumps(list(client.allowed_servers)),
            "created_at": client.created_at, "grant_types": json.dumps(list(client.grant_types)),
            "jwks": None if client.jwks is None else json.dumps(client.jwks),
            "jwks_uri": client.jwks_uri})


def _client(row: Any) -> Client:
    grant_types = DEFAULT_GRANT_TYPES if row.grant_types is None else json.loads(row.grant_types)
    return Client(client_id=row.client_id, name=row.name,
                  redirect_uris=tuple(json.loads(row.redirect_uris)),
                  auth_method=row.auth_method, secret_hash=row.secret_hash,
                  scope=row.scope, allowed_servers=tuple(json.loads(row.allowed_servers)),
                  created_at=row.created_at, grant_types=tuple(grant_types),
                  jwks=None if row.jwks is None else json.loads(row.jwks),
                  jwks_uri=row.jwks_uri)


class SqlUserStore:
    def __init__(self, engine: Engine, tables: Tables) -> None:
        self._engine, self._t = engine, tables.users

    def get(self, username: str) -> User | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(self._t).where(self._t.c.username == username)).first()
        if row is None:
            return None
        return User(row.username, row.password_hash, row.display_name, row.fhir_user_server,
                    row.fhir_user)

    def put(self, user: User) -> None:
        _upsert(self._engine, self._t, "username", {
            "username": user.username, "password_hash": user.password_hash,
            "display_name": user.display_name, "fhir_user_server": user.fhir_user_server,
            "fhir_user": user.fhir_user})


class SqlCodeStore:
    RETENTION = CODE_RETENTION  # used codes outlive their expiry: a replay is recognised

    def __init__(self, engine: Engine, tables: Tables) -> None:
        self._engine, self._t = engine, tables.codes

    def save(self, code_hash: str, code: AuthorizationCode) -> None:
        data = {"client_id": code.client_id, "redirect_uri": code.redirect_uri,
                "code_challenge": code.code_challenge, "grant": code.grant.to_dict()}
        sql_single_use.store(self._engine, self._t, self.RETENTION, code_hash=code_hash,
                         client_id=code.client_id, data=json.dumps(data),
                         expires_at=code.expires_at)

    def consume(self, code_hash: str, now: int) -> AuthorizationCode | None:
        row = sql_single_use.claim(self._engine, self._t, "code_hash", code_hash, now)
        if row is None:
            return None
        data = json.loads(row.data)
        return AuthorizationCode(data["client_id"], data["redirect_uri"],
                                 data["code_challenge"], Grant.from_dict(data["grant"]),
                                 row.expires_at)

    def purge(self, now: int) -> int:
        with self._engine.begin() as conn:
            return int(conn.execute(delete(self._t).where(
                self._t.c.expires_at < now - self.RETENTION)).rowcount)


class SqlRefreshStore:
    def __init__(self, engine: Engine, tables: Tables) -> None:
        self._engine, self._t = engine, tables.refresh_tokens
        t = self._t
        # Built once (every refresh runs them): building a statement costs several times
        # more than running it.
        self._insert = t.insert()
        self._purge_retained = delete(t).where(t.c.expires_at < bindparam("before"))
        self._claim = update(t).where(
            t.c.token_hash == bindparam("hash"), t.c.used.is_(False), t.c.revoked.is_(False),
            t.c.expires_at > bindparam("now")).values(used=True)
        self._row = select(t).where(t.c.token_hash == bindparam("hash"))
        self._revoke_all = update(t).where(t.c.family == bindparam("fam")).values(revoked=True)

    def save(self, token_hash: str, token: RefreshToken) -> None:
        with self._engine.begin() as conn:
            conn.execute(self._insert, {
                "token_hash": token_hash, "family": token.family, "client_id": token.client_id,
                "data": json.dumps(token.grant.to_dict()), "expires_at": token.expires_at,
                "used": False, "revoked": False})

    def rotate(self, token_hash: str, now: int) -> RefreshToken | None:
        with self._engine.begin() as conn:
            conn.execute(self._purge_retained, {"before": now - REFRESH_RETENTION})
            claimed = conn.execute(self._claim, {"hash": token_hash, "now": now}).rowcount
            row = conn.execute(self._row, {"hash": token_hash}).first()
            if row is None:
                return None
            if claimed != 1:
                if row.used:  # a replay: the token leaked, so end every token of the grant
                    conn.execute(self._revoke_all, {"fam": row.family})
                return None
        return RefreshToken(row.family, row.client_id, Grant.from_dict(json.loads(row.data)),
                            row.expires_at)

    def lookup(self, token_hash: str) -> RefreshTokenState | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(self._t).where(self._t.c.token_hash == token_hash)).first()
        if row is None:
            return None
        token = RefreshToken(row.family, row.client_id, Grant.from_dict(json.loads(row.data)),
                             row.expires_at)
        return RefreshTokenState(token, used=bool(row.used), revoked=bool(row.revoked))

    def revoke_family(self, family: str) -> int:
        t = self._t
        with self._engine.begin() as conn:
            return int(conn.execute(update(t).where(t.c.family == family, t.c.revoked.is_(False))
                                    .values(revoked=True)).rowcount)

    def purge(self, now: int) -> int:
        # Used (rotated) rows stay until they expire: presenting one is a replay to detect.
        t = self._t
        with self._engine.begin() as conn:
            return int(conn.execute(delete(t).where(
                (t.c.expires_at <= now) | t.c.revoked.is_(True))).rowcount)


class SqlInteractionStore:
    def __init__(self, engine: Engine, tables: Tables) -> None:
        self._engine, self._t = engine, tables.interactions

    def create(self, key_hash: str, interaction: Interaction) -> None:
        with self._engine.begin() as conn:
            self._purge(conn, interaction.expires_at)
            conn.execute(self._t.insert().values(
                key_hash=key_hash, data=json.dumps(interaction.to_dict()),
                expires_at=interaction.expires_at))

    def _purge(self, conn: Connection, now: int) -> None:
        # Anything that expired a day before this new interaction's expiry is garbage.
        conn.execute(delete(self._t).where(self._t.c.expires_at < now - 86400))

    def get(self, key_hash: str, now: int) -> Interaction | None:
        query = select(self._t.c.data).where(self._t.c.key_hash == key_hash,
                                              self._t.c.expires_at > now)
        with self._engine.connect() as conn:
            data = conn.execute(query).scalar_one_or_none()
        return None if data is None else Interaction.from_dict(json.loads(data))

    def update(self, key_hash: str, interaction: Interaction) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(self._t).where(self._t.c.key_hash == key_hash).values(
                data=json.dumps(interaction.to_dict()), expires_at=interaction.expires_at))

    def delete(self, key_hash: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(self._t).where(self._t.c.key_hash == key_hash))

    def purge(self, now: int) -> int:
        with self._engine.begin() as conn:
            return int(conn.execute(delete(self._t).where(self._t.c.expires_at <= now)).rowcount)


def sql_stores(engine: Engine) -> Stores:
    """Create the tables (idempotent; a new store is stamped with its schema version,
    storage/schema.py) and return every store on ``engine``."""
    tables = Tables()
    stamp_if_new(engine, AUTH_SCHEMA, lambda: _create(engine, tables))
    return Stores(clients=SqlClientStore(engine, tables), users=SqlUserStore(engine, tables),
                  codes=SqlCodeStore(engine, tables),
                  refresh_tokens=SqlRefreshStore(engine, tables),
                  interactions=SqlInteractionStore(engine, tables),
                  ehr=sql_ehr_stores(engine),
                  replays=SqlReplayCache.create(engine),
                  tokens=sql_token_registry(engine),
                  rs_credentials=sql_rs_credentials(engine),
                  login_failures=SqlLoginFailureStore(engine),
                  client_auth_failures=SqlLoginFailureStore(engine, "as_client_auth_failures"),
                  consents=SqlConsentStore(engine),
                  app_access=SqlAppAccessStore(engine, tables.refresh_tokens),
                  initial_tokens=SqlInitialTokenStore.create(engine),
                  patient_index=SqlPatientIndex(engine))


def _create(engine: Engine, tables: Tables) -> None:
    tables.metadata.create_all(engine)
    add_missing_columns(engine, tables.clients)
