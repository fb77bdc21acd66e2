"""Contract suites: the private_key_jwt replay cache and the client store's fields, listing
and deletion on every backend (``contract_stores``: SQLite, PostgreSQL, in memory); sharing
between instances and the upgrade of a client table created before those fields existed on
SQLite and PostgreSQL (``sql_url``)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Column, Integer, MetaData, String, Table, Text

from smartrealm.authz.records import Stores
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.authz.stores.sql_replay import SqlReplayCache
from smartrealm.oauth.store import PRIVATE_KEY_JWT, Client
from smartrealm.storage import make_engine
from tests.oauth.assertion_keys import ClientKey


def test_replay_cache_first_use_then_replay_then_expiry(contract_stores: Stores) -> None:
    cache = contract_stores.replays
    assert cache.first_use("a", expires_at=200, now=100)
    assert not cache.first_use("a", expires_at=300, now=150)
    assert cache.first_use("b", expires_at=200, now=150)
    assert not cache.first_use("a", expires_at=300, now=199)
    # Expired entries are forgotten (the assertion itself would be expired by then).
    assert cache.first_use("a", expires_at=400, now=200)
    assert not cache.first_use("a", expires_at=500, now=399)


def test_replay_cache_is_shared_between_instances(sql_url: str) -> None:
    first = SqlReplayCache.create(make_engine(sql_url))
    second = SqlReplayCache.create(make_engine(sql_url))
    assert first.first_use("k" * 600, expires_at=200, now=100)  # long keys are hashed
    assert not second.first_use("k" * 600, expires_at=200, now=100)


def test_replay_cache_concurrent_first_use_wins_once(contract_stores: Stores) -> None:
    cache = contract_stores.replays
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: cache.first_use("race", 10_000, 100), range(16)))
    assert results.count(True) == 1


def test_client_store_keeps_the_new_fields_lists_and_deletes(contract_stores: Stores) -> None:
    clients = contract_stores.clients
    jwks = ClientKey.generate("ES384", "k1").jwks()
    backend = Client("b-client", "Bulk", (), PRIVATE_KEY_JWT, scope="system/*.rs",
                     allowed_servers=("ehr",), created_at=5,
                     grant_types=("client_credentials",), jwks=jwks)
    remote = Client("a-client", "App", ("https://a.example/cb",), PRIVATE_KEY_JWT,
                    jwks_uri="https://a.example/jwks")
    clients.put(backend)
    clients.put(remote)
    assert clients.get("b-client") == backend
    assert clients.get("a-client") == remote
    assert [c.client_id for c in clients.all()] == ["a-client", "b-client"]
    assert clients.delete("a-client")
    assert not clients.delete("a-client")
    assert clients.get("a-client") is None
    assert [c.client_id for c in clients.all()] == ["b-client"]


def test_a_client_table_from_before_the_new_fields_is_upgraded(sql_url: str) -> None:
    engine = make_engine(sql_url)
    old = Table("as_clients", MetaData(),
                Column("client_id", String(255), primary_key=True),
                Column("name", Text, nullable=False),
                Column("redirect_uris", Text, nullable=False),
                Column("auth_method", String(64), nullable=False),
                Column("secret_hash", Text), Column("scope", Text, nullable=False),
                Column("allowed_servers", Text, nullable=False),
                Column("created_at", Integer, nullable=False))
    old.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(old.insert().values(
            client_id="old", name="Old", redirect_uris='["https://a.example/cb"]',
            auth_method="none", secret_hash=None, scope="", allowed_servers="[]",
            created_at=1))
    clients = sql_stores(engine).clients
    found = clients.get("old")
    assert found is not None
    assert found.grant_types == ("authorization_code", "refresh_token")
    assert found.jwks is None and found.jwks_uri is None
    sql_stores(engine)  # idempotent
    clients.put(Client("new", "New", (), PRIVATE_KEY_JWT, jwks_uri="https://n.example/j",
                       grant_types=("client_credentials",)))
    assert [c.client_id for c in clients.all()] == ["new", "old"]
