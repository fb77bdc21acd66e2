"""The private_key_jwt replay cache takes part in the AS's purge (authz/maintenance.py) on
every backend (``contract_stores``: SQLite, PostgreSQL, in memory): expired entries go, live
ones stay in force."""

from __future__ import annotations

from smartrealm.authz.maintenance import purge, purgeable_stores
from smartrealm.authz.records import Stores


def test_purge_deletes_only_expired_entries(contract_stores: Stores) -> None:
    cache = contract_stores.replays
    assert cache.first_use("old-1", expires_at=150, now=100)
    assert cache.first_use("old-2", expires_at=200, now=100)
    assert cache.first_use("live", expires_at=500, now=100)
    assert cache.purge(200) == 2
    assert cache.purge(200) == 0
    assert not cache.first_use("live", expires_at=600, now=201)  # still a replay


def test_the_periodic_purge_covers_the_replay_cache(contract_stores: Stores) -> None:
    stores = contract_stores
    assert "replays" in purgeable_stores(stores)
    assert stores.replays.first_use("jti", expires_at=150, now=100)
    assert purge(stores, 1000)["replays"] == 1


def test_a_key_is_refused_while_live_and_free_again_once_expired(
        contract_stores: Stores) -> None:
    """A live key is a replay; an expired entry of the same key — not purged yet — is taken
    over with the new expiry (in SQL one upsert per use, stores/sql_replay.py)."""
    cache = contract_stores.replays
    assert cache.first_use("k", expires_at=150, now=100)
    assert not cache.first_use("k", expires_at=300, now=149)
    assert cache.first_use("k", expires_at=300, now=150)  # expired at 150, not purged
    assert not cache.first_use("k", expires_at=400, now=299)  # the new expiry holds
    assert cache.first_use("other", expires_at=400, now=299)
