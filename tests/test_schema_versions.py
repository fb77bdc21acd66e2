"""Schema versions (storage/schema.py) on SQLite and PostgreSQL (``sql_url``): a new store is
stamped with the current version; a store from before versions, an older one and a newer
one are refused with what to do; `migrate` brings an unversioned or older store up in
place, each step with its stamp, and never downgrades."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, inspect, text

from smartrealm.authz.stores.sql import sql_stores
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.storage import make_engine
from smartrealm.storage.schema import (
    AUTH_SCHEMA,
    FHIR_SCHEMA,
    VERSION_TABLE,
    Migration,
    SchemaMismatch,
    SchemaPlan,
    migrate,
    require_current,
    stored_version,
)


def _add_note_column(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE demo_items ADD COLUMN note VARCHAR(40)"))


def _create_demo(engine: object) -> None:
    metadata = MetaData()
    Table("demo_items", metadata, Column("id", Integer, primary_key=True),
          Column("name", String(40)))
    metadata.create_all(engine)  # type: ignore[arg-type]


V1 = SchemaPlan("demo", "demo_items")
V2 = SchemaPlan("demo", "demo_items", (Migration(2, "items get a note", _add_note_column),))


def test_new_stores_are_stamped_and_accepted(sql_url: str) -> None:
    engine = make_engine(sql_url)
    require_current(engine, AUTH_SCHEMA, "auth_server")  # new: fine, about to be created
    sql_stores(engine)
    SqlResourceRepository(engine).create_tables()
    assert stored_version(engine, AUTH_SCHEMA) == AUTH_SCHEMA.current
    assert stored_version(engine, FHIR_SCHEMA) == FHIR_SCHEMA.current
    require_current(engine, AUTH_SCHEMA, "auth_server")
    require_current(engine, FHIR_SCHEMA, "ehr")


def test_a_store_from_before_versions_is_refused_until_migrated(sql_url: str) -> None:
    engine = make_engine(sql_url)
    sql_stores(engine)
    with engine.begin() as conn:  # what a release before versions left behind
        conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
    with pytest.raises(SchemaMismatch, match="before schema versions: run `smartrealm migrate`"):
        require_current(engine, AUTH_SCHEMA, "auth_server")
    sql_stores(engine)  # the CLI's own use of the tables stamps nothing on an old store
    assert stored_version(engine, AUTH_SCHEMA) is None
    assert migrate(engine, AUTH_SCHEMA, lambda: sql_stores(engine), "auth_server") == (
        None, AUTH_SCHEMA.current)
    require_current(engine, AUTH_SCHEMA, "auth_server")
    assert migrate(engine, AUTH_SCHEMA, lambda: sql_stores(engine), "auth_server") == (
        AUTH_SCHEMA.current, AUTH_SCHEMA.current)


def test_an_older_store_is_refused_then_migrated_step_by_step(sql_url: str) -> None:
    engine = make_engine(sql_url)
    assert migrate(engine, V1, lambda: _create_demo(engine), "demo") == (None, 1)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO demo_items (id, name) VALUES (1, 'kept')"))
    with pytest.raises(SchemaMismatch, match="version 1, this release runs on version 2"):
        require_current(engine, V2, "demo")
    assert migrate(engine, V2, lambda: _create_demo(engine), "demo") == (1, 2)
    require_current(engine, V2, "demo")
    columns = {c["name"] for c in inspect(engine).get_columns("demo_items")}
    assert columns == {"id", "name", "note"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM demo_items")).scalar_one() == "kept"


def test_a_failing_step_leaves_the_store_at_the_last_good_version(sql_url: str) -> None:
    engine = make_engine(sql_url)
    migrate(engine, V1, lambda: _create_demo(engine), "demo")

    def broken(conn: Connection) -> None:
        conn.execute(text("ALTER TABLE demo_items ADD COLUMN extra INTEGER"))
        raise RuntimeError("step 3 fails half-way")

    plan = SchemaPlan("demo", "demo_items", (
        Migration(2, "note", _add_note_column), Migration(3, "broken", broken)))
    with pytest.raises(RuntimeError):
        migrate(engine, plan, lambda: _create_demo(engine), "demo")
    assert stored_version(engine, plan) == 2
    columns = {c["name"] for c in inspect(engine).get_columns("demo_items")}
    assert "extra" not in columns  # the failed step's transaction was rolled back


def test_a_newer_store_is_refused_and_never_downgraded(sql_url: str) -> None:
    engine = make_engine(sql_url)
    migrate(engine, V2, lambda: _create_demo(engine), "demo")
    with pytest.raises(SchemaMismatch, match="version 2, newer than this release's version 1"):
        require_current(engine, V1, "demo")
    with pytest.raises(SchemaMismatch, match="newer"):
        migrate(engine, V1, lambda: _create_demo(engine), "demo")
    assert stored_version(engine, V1) == 2
