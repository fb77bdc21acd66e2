"""`smartrealm migrate`: bring every component's database of the realm to the schema version
this release runs on (storage/schema.py), in place. Stop the realm first; back up first."""

from __future__ import annotations

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from smartrealm.authz.stores.sql import sql_stores
from smartrealm.cli.common import ConfigOption, DataDirOption, console, fail, load_realm
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.realm.runner import AUTH_SERVER
from smartrealm.storage import make_engine
from smartrealm.storage.schema import AUTH_SCHEMA, FHIR_SCHEMA, SchemaMismatch
from smartrealm.storage.schema import migrate as migrate_store


def migrate(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Upgrade the realm's databases in place to this release's schema version."""
    realm = load_realm(config, data_dir)
    targets = [(AUTH_SERVER, None)] + [(rs.id, rs.id) for rs in realm.resource_servers
                                      if rs.mode == "server"]
    for name, server_id in targets:
        engine = make_engine(realm.database_url_for(server_id))
        try:
            before, after = _migrate(engine, server_id, name)
        except SchemaMismatch as exc:
            raise fail(f"[red]schema[/red] {exc}", 2) from None
        except SQLAlchemyError as exc:
            raise fail(f"[red]database error[/red] {name}: {type(exc).__name__}", 1) from None
        finally:
            engine.dispose()
        was = "unversioned" if before is None else f"version {before}"
        change = "already current" if before == after else f"{was} → version {after}"
        console.print(f"{name:<14} {change}")


def _migrate(engine: Engine, server_id: str | None, name: str) -> tuple[int | None, int]:
    if server_id is None:
        return migrate_store(engine, AUTH_SCHEMA, lambda: sql_stores(engine), name)
    return migrate_store(engine, FHIR_SCHEMA, SqlResourceRepository(engine).create_tables, name)


def register(root: typer.Typer) -> None:
    root.command()(migrate)
