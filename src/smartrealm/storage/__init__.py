"""SQL engines shared by every store: SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from smartrealm.core.defaults import (
    DB_CONNECT_TIMEOUT,
    DB_POOL_OVERFLOW,
    DB_POOL_SIZE,
    DB_POOL_TIMEOUT,
)
from smartrealm.realm.config import SCHEMA_PARAM

# What a database outage raises: connection refused or lost, a server shutting down, no
# pooled connection in time, a locked SQLite file. The servers answer these with 503 and
# Retry-After (never a 500); the pool's pre-ping replaces dead connections once the
# database is back, so they recover without a restart.
OUTAGES: tuple[type[Exception], ...] = (OperationalError, InterfaceError, DisconnectionError,
                                        PoolTimeout)

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def make_engine(url: str) -> Engine:
    """An engine for ``url``. SQLite gets WAL and a busy timeout (the CLI and the servers may
    open one file together). A PostgreSQL URL may carry ``smartrealm_schema=<name>``: the
    engine then creates that schema and works inside it, which keeps the tables of the AS and
    of each resource server apart in one database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    schema = parsed.query.get(SCHEMA_PARAM)
    parsed = parsed.difference_update_query([SCHEMA_PARAM])
    # Bounded waits: a connection attempt, a free pooled connection; keepalives notice a
    # peer that vanished without closing (a failed-over host).
    engine = create_engine(parsed, pool_pre_ping=True, pool_timeout=DB_POOL_TIMEOUT,
                           pool_size=DB_POOL_SIZE, max_overflow=DB_POOL_OVERFLOW,
                           connect_args={"connect_timeout": DB_CONNECT_TIMEOUT,
                                         "keepalives": 1, "keepalives_idle": 30,
                                         "keepalives_interval": 5, "keepalives_count": 3})
    if isinstance(schema, str):
        _use_schema(engine, schema.replace("-", "_").lower())
    return engine


def database_check(engine: Engine) -> Callable[[], str | None]:
    """A readiness check (serving/health.py): None when the database answers a round trip,
    else a short reason without the URL or the driver's message (they may name hosts)."""
    def check() -> str | None:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return f"database unavailable ({type(exc).__name__})"
        return None
    return check


def _use_schema(engine: Engine, schema: str) -> None:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        with dbapi_conn.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            cursor.execute(f'SET search_path TO "{schema}"')
        dbapi_conn.autocommit = autocommit

    event.listen(engine, "connect", on_connect)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def add_missing_columns(engine: Engine, table: Table) -> None:
    """Add the nullable columns ``table`` has gained since an existing database was created
    (``create_all`` never alters a table), so a realm's state survives an upgrade."""
    with engine.begin() as conn:
        present = {c["name"] for c in inspect(conn).get_columns(table.name)}
        for column in table.columns:
            if column.name in present or not column.nullable:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
