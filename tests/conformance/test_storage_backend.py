"""The suite runs twice, and the second time really on PostgreSQL: every component of the
realm keeps its state in its own schema of the realm's database, and no SQLite file is
written; on the SQLite run every component has its own file."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from smartrealm.storage import make_engine
from tests.conformance.conftest import Realm

pytestmark = pytest.mark.e2e
COMPONENTS = ("auth", "ehr", "imaging", "lab", "archive")


def test_the_realm_runs_on_the_requested_storage(realm: Realm) -> None:
    files = sorted(p.name for p in realm.data_dir.glob("*.db"))
    if realm.backend == "sqlite":
        assert files == sorted(f"{c}.db" for c in COMPONENTS)
        return
    assert realm.config.database_url.startswith("postgresql+psycopg://")
    assert files == []
    engine = make_engine(realm.config.database_url)
    try:
        schemas = set(inspect(engine).get_schema_names())
        assert set(COMPONENTS) <= schemas
        for component in COMPONENTS:
            assert inspect(engine).get_table_names(schema=component), component
    finally:
        engine.dispose()
