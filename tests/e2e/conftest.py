"""End-to-end fixtures: the default realm, really started (one uvicorn process per
component on free loopback ports, state in a temporary directory)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from smartrealm.realm.config import RealmConfig, load_config
from smartrealm.realm.runner import AUTH_SERVER, Launch, free_ports, running_realm


def start_default_realm(data_dir: Path) -> tuple[RealmConfig, Launch]:
    realm = load_config()
    ports = free_ports([AUTH_SERVER, *(rs.id for rs in realm.resource_servers)])
    return realm.relocated(ports, data_dir), Launch(None, ports, data_dir)


@contextmanager
def default_realm_running(data_dir: Path) -> Iterator[RealmConfig]:
    """The default realm, started for real; fails the tests if a component dies."""
    realm, launch = start_default_realm(data_dir)
    with running_realm(realm, launch) as running:
        yield realm
        assert not running.exited(), f"a component died: {running.exited()}"


@pytest.fixture(scope="session")
def live_realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealmConfig]:
    with default_realm_running(tmp_path_factory.mktemp("realm")) as realm:
        yield realm


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15.0) as client:
        yield client

