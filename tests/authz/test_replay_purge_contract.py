"""The private_key_jwt replay cache takes part in the AS's purge (authz/maintenance.py), on
SQLite and on PostgreSQL (``sql_url``): expired entries go, live ones stay in force."""

from __future__ import annotations

from smartrealm.authz.maintenance import purge, purgeable_stores
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.authz.stores.sql_replay import SqlReplayCache
from smartrealm.storage import make_engine


def test_purge_deletes_only_expired_entries(sql_url: str) -> None:
    cache = SqlReplayCache.create(make_engine(sql_url))
    assert cache.first_use("old-1", expires_at=150, now=100)
    assert cache.first_use("old-2", expires_at=200, now=100)
    assert cache.first_use("live", expires_at=500, now=100)
    assert cache.purge(200) == 2
    assert cache.purge(200) == 0
    assert not cache.first_use("live", expires_at=600, now=201)  # still a replay


def test_the_periodic_purge_covers_the_replay_cache(sql_url: str) -> None:
    stores = sql_stores(make_engine(sql_url))
    assert "replays" in purgeable_stores(stores)
    assert stores.replays.first_use("jti", expires_at=150, now=100)
    assert purge(stores, 1000)["replays"] == 1


def test_a_key_is_refused_while_live_and_free_again_once_expired(sql_url: str) -> None:
    """One upsert per use (sql_replay.py): a live key is a replay; an expired row of the same
    key — not purged yet — is taken over with the new expiry."""
    cache = SqlReplayCache.create(make_engine(sql_url))
    assert cache.first_use("k", expires_at=150, now=100)
    assert not cache.first_use("k", expires_at=300, now=149)
    assert cache.first_use("k", expires_at=300, now=150)  # expired at 150, not purged
    assert not cache.first_use("k", expires_at=400, now=299)  # the new expiry holds
    assert cache.first_use("other", expires_at=400, now=299)
