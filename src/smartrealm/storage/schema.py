"""Schema versions: each component's database (or PostgreSQL schema) records the version of
its tables in ``smartrealm_schema``, so a release never runs on tables it does not know.

* A store created by this release is stamped with the current version when its tables are
  first created (``stamp_if_new``, called where the tables are created).
* ``serve`` refuses a store whose version is not the current one (``require_current``,
  before it creates or extends any table):
  an older one — or one from a release before versions, which has the tables but no
  stamp — until ``smartrealm migrate`` brings it up; a newer one always (written by a later
  release: run that one).
* ``smartrealm migrate`` (``migrate``) brings a store to the current version: an unversioned
  store first gets the baseline (version 1: the tables of the release that introduced
  versions, created or extended in place by ``create``, which only adds), then each later
  step runs in its own transaction, together with the new stamp, in order.

A later release that changes a table adds a ``Migration`` to the plan of that component
here, and its version becomes the current one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, inspect, select

VERSION_TABLE = "smartrealm_schema"
BASELINE = 1

_metadata = MetaData()
_versions = Table(VERSION_TABLE, _metadata,
                  Column("component", String(32), primary_key=True),
                  Column("version", Integer, nullable=False),
                  Column("migrated_at", Integer, nullable=False))


@dataclass(frozen=True)
class Migration:
    version: int  # the version this step brings the store to
    summary: str
    apply: Callable[[Connection], None]


@dataclass(frozen=True)
class SchemaPlan:
    component: str  # "auth" or "fhir": the kind of store
    sentinel: str  # a table every store of this kind has (present = not a new store)
    migrations: tuple[Migration, ...] = ()

    @property
    def current(self) -> int:
        return max((m.version for m in self.migrations), default=BASELINE)


AUTH_SCHEMA = SchemaPlan("auth", "as_clients")
FHIR_SCHEMA = SchemaPlan("fhir", "resources")


class SchemaMismatch(Exception):  # noqa: N818 - a state, like KeysLocked
    """The store's schema is not the one this release runs on; the message says what to do."""


def stored_version(engine: Engine, plan: SchemaPlan) -> int | None:
    """The stamped version; None when the store has none (new, or from before versions)."""
    if not inspect(engine).has_table(VERSION_TABLE):
        return None
    with engine.connect() as conn:
        found = conn.execute(select(_versions.c.version).where(
            _versions.c.component == plan.component)).scalar_one_or_none()
    return None if found is None else int(found)


def is_new(engine: Engine, plan: SchemaPlan) -> bool:
    return stored_version(engine, plan) is None and not inspect(engine).has_table(plan.sentinel)


def stamp_if_new(engine: Engine, plan: SchemaPlan, create: Callable[[], object]) -> None:
    """Run ``create`` (idempotent table creation); a store that was new is stamped with the
    current version, so a later ``serve`` accepts it."""
    new = is_new(engine, plan)
    create()
    if new:
        with engine.begin() as conn:
            _stamp(conn, plan, plan.current)


def require_current(engine: Engine, plan: SchemaPlan, name: str) -> None:
    """Raise SchemaMismatch unless the store of component ``name`` is new (its tables are
    about to be created, and stamped) or at the current version. Called before any table is
    created or extended, so a release never touches tables it does not know."""
    found = stored_version(engine, plan)
    if found == plan.current or (found is None and is_new(engine, plan)):
        return
    if found is None:
        raise SchemaMismatch(f"{name}: the database was created by an earlier release, "
                             "before schema versions: run `smartrealm migrate`")
    if found < plan.current:
        raise SchemaMismatch(f"{name}: the database schema is version {found}, this release "
                             f"runs on version {plan.current}: run `smartrealm migrate`")
    raise SchemaMismatch(f"{name}: the database schema is version {found}, newer than this "
                         f"release's version {plan.current}: run the release that wrote it "
                         "(or a later one)")


def migrate(engine: Engine, plan: SchemaPlan, create: Callable[[], object],
            name: str) -> tuple[int | None, int]:
    """Bring the store to the current version; returns (version before, version after)."""
    before = stored_version(engine, plan)
    if before is not None and before > plan.current:
        require_current(engine, plan, name)  # raises: never downgrade
    if before is None:
        create()  # the baseline: creates, or extends in place, the tables (only adds)
        with engine.begin() as conn:
            _stamp(conn, plan, BASELINE)
    version = before or BASELINE
    for step in sorted(plan.migrations, key=lambda m: m.version):
        if step.version <= version:
            continue
        with _transaction(engine) as conn:
            step.apply(conn)
            _stamp(conn, plan, step.version)
        version = step.version
    return before, version


@contextmanager
def _transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction that covers DDL too. PostgreSQL's DDL is transactional as it is;
    Python's sqlite3 module commits before DDL unless the transaction was opened explicitly,
    so on SQLite it is (SQLite's own DDL is transactional)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def _stamp(conn: Connection, plan: SchemaPlan, version: int) -> None:
    _metadata.create_all(conn)
    values = {"version": version, "migrated_at": int(time.time())}
    updated = conn.execute(_versions.update().where(
        _versions.c.component == plan.component).values(**values)).rowcount
    if not updated:
        conn.execute(_versions.insert().values(component=plan.component, **values))
