"""Shared fixtures. ``sql_url`` runs a test once per storage backend (SQLite and a real,
throwaway PostgreSQL cluster): the contract suites use it so every backend passes the same
tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from smartrealm.storage import make_engine
from tests.pg import postgres_cluster


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test."""
    name = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(pg_server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield pg_server_url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))
