"""The periodic purge of the AS (authz/maintenance.py): it runs at start-up and on a timer,
survives a failing run, and prunes signing keys no token can name."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from smartrealm.authz.maintenance import key_pruner, periodic_purge, purge
from smartrealm.authz.records import Stores
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.oauth.grants import Grant, ServerGrant
from smartrealm.oauth.key_rotation import MARGIN, RotatingKeyRing
from smartrealm.oauth.keys import KeyRing, generate_key
from smartrealm.oauth.store import RefreshToken
from smartrealm.storage import make_engine
from smartrealm.storage.key_store import SqlKeyStore

GRANT = Grant("app", "ann", (ServerGrant("ehr", "http://h/fhir", "4.0.1", ("patient/*.rs",)),))


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    engine = make_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    yield sql_stores(engine)
    engine.dispose()


class Flaky:
    """A store whose first purge fails (a busy database), then counts its runs."""

    def __init__(self) -> None:
        self.runs = 0

    def purge(self, now: int) -> int:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("database is locked")
        return 0


async def test_purge_runs_at_start_and_on_a_timer(stores: Stores) -> None:
    stores.refresh_tokens.save("old", RefreshToken("f", "app", GRANT, 100))
    flaky = Flaky()
    patched = replace(stores, codes=flaky)  # type: ignore[arg-type]
    async with periodic_purge(patched, time.time, interval=0.05):
        for _ in range(100):
            if flaky.runs >= 3:
                break
            await asyncio.sleep(0.02)
    assert flaky.runs >= 3  # the failed first run did not stop the loop
    assert stores.refresh_tokens.lookup("old") is None


async def test_the_purge_stops_with_the_app(stores: Stores) -> None:
    flaky = Flaky()
    async with periodic_purge(replace(stores, codes=flaky), time.time,  # type: ignore[arg-type]
                              interval=0.01):
        await asyncio.sleep(0.05)
    runs = flaky.runs
    await asyncio.sleep(0.05)
    assert flaky.runs == runs


def test_keys_are_pruned_only_with_a_rotating_ring(stores: Stores, tmp_path: Path) -> None:
    store = SqlKeyStore(make_engine(f"sqlite:///{tmp_path / 'keys.db'}"))
    store.create_tables()
    old, new = generate_key(now=1000), generate_key(now=2000)
    store.add(old)
    store.add(new)
    assert key_pruner(KeyRing(store.load())) is None
    ring = RotatingKeyRing(store, 60)
    counts = purge(stores, 2000 + 300 + MARGIN, key_pruner(ring))
    assert counts["signing_keys"] == 1
    assert [k.kid for k in store.load()] == [new.kid]
