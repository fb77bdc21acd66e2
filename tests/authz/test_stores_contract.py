"""One contract suite per store, run on every backend (``sql_url``: SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from smartrealm.authz.records import Interaction, Offer, PendingRequest, Stores, User
from smartrealm.oauth.grants import Grant, ServerGrant
from smartrealm.oauth.keys import ensure_keys, generate_key
from smartrealm.oauth.store import AuthorizationCode, Client, RefreshToken
from smartrealm.storage import make_engine
from smartrealm.storage.key_store import SqlKeyStore


@pytest.fixture
def stores(contract_stores: Stores) -> Stores:
    return contract_stores  # SQLite, PostgreSQL and in memory (tests/authz/conftest.py)


def test_clients_put_get_replace(stores: Stores) -> None:
    assert stores.clients.get("app") is None
    client = Client("app", "App", ("https://a.example/cb", "http://127.0.0.1/cb"),
                    "client_secret_basic", "scrypt$x", "patient/*.rs", ("ehr",), 17)
    stores.clients.put(client)
    assert stores.clients.get("app") == client
    changed = replace(client, name="App 2", secret_hash=None, auth_method="none")
    stores.clients.put(changed)
    assert stores.clients.get("app") == changed


def test_client_secret_hash_is_replaced_only_if_unchanged(stores: Stores) -> None:
    """The rehash on first use: a compare-and-set, so it never revives a removed client nor
    overwrites a secret an operator changed in the meantime."""
    client = Client("app", "App", (), "client_secret_basic", "scrypt$old")
    stores.clients.put(client)
    assert not stores.clients.replace_secret_hash("app", "scrypt$other", "hmac-sha256$k$new")
    assert stores.clients.get("app") == client
    assert stores.clients.replace_secret_hash("app", "scrypt$old", "hmac-sha256$k$new")
    assert stores.clients.get("app") == replace(client, secret_hash="hmac-sha256$k$new")
    stores.clients.delete("app")
    assert not stores.clients.replace_secret_hash("app", "hmac-sha256$k$new", "x")
    assert stores.clients.get("app") is None


def test_users_put_get_replace(stores: Stores) -> None:
    user = User("ann", "scrypt$h", "Ann", "ehr", "Patient/p1")
    stores.users.put(user)
    assert stores.users.get("ann") == user and stores.users.get("bob") is None
    stores.users.put(replace(user, display_name="Ann B"))
    assert stores.users.get("ann") == replace(user, display_name="Ann B")


def _code(expires_at: int) -> AuthorizationCode:
    grant = Grant("app", "ann", (ServerGrant("ehr", "http://h/fhir", "4.0.1",
                                             ("patient/*.rs",), "p1"),),
                  ("openid",), "http://h/fhir/Patient/p1", "n", 5)
    return AuthorizationCode("app", "https://a.example/cb", "c" * 43, grant, expires_at)


def test_codes_are_single_use(stores: Stores) -> None:
    code = _code(1060)
    stores.codes.save("h1", code)
    assert stores.codes.consume("h1", 1000) == code
    assert stores.codes.consume("h1", 1000) is None


def test_expired_and_unknown_codes(stores: Stores) -> None:
    stores.codes.save("h2", _code(1060))
    assert stores.codes.consume("h2", 1060) is None
    assert stores.codes.consume("nope", 1000) is None


def test_interactions_lifecycle(stores: Stores) -> None:
    interaction = Interaction(csrf="c", expires_at=1600, request=PendingRequest(
        client_id="app", redirect_uri="https://app.example/cb", state="s", scope="openid",
        code_challenge="x" * 43, servers=("ehr", "lab"), multi=True, nonce="n"))
    stores.interactions.create("k", interaction)
    assert stores.interactions.get("k", 1000) == interaction
    assert stores.interactions.get("k", 1600) is None  # expired
    updated = replace(interaction, stage="consent", patients={"ehr": "p1", "lab": None},
                      offers=(Offer("ehr", "EHR", "http://ehr.example/fhir", ("patient/*.rs",),
                                    alternatives={"patient/Observation.rs": (
                                        "patient/Observation.rs?category=laboratory",)}),),
                      identity=("openid",))
    stores.interactions.update("k", updated)
    assert stores.interactions.get("k", 1000) == updated
    stores.interactions.delete("k")
    assert stores.interactions.get("k", 1000) is None


def test_an_interaction_stored_with_a_failure_count_still_loads() -> None:
    # Earlier versions stored a per-interaction failure count (now the per-user lockout).
    stored = {**Interaction(csrf="c", expires_at=1600, request=None).to_dict(), "failures": 2,
              "request": {}}  # as a /manage session was stored
    assert Interaction.from_dict(stored) == Interaction(csrf="c", expires_at=1600, request=None)


def test_sql_key_store(sql_url: str) -> None:
    engine = make_engine(sql_url)
    store = SqlKeyStore(engine)
    store.create_tables()
    assert store.load() == []
    ring = ensure_keys(store)
    assert ensure_keys(store).active.kid == ring.active.kid  # generated only once
    newer = generate_key(now=ring.active.created_at + 10)
    store.add(newer)
    ring = ensure_keys(store)
    assert ring.active.kid == newer.kid
    assert len(ring.jwks()["keys"]) == 2
    engine.dispose()


def test_refresh_tokens_rotate_and_replay_revokes_family(stores: Stores) -> None:
    grant = _code(0).grant
    stores.refresh_tokens.save("r1", RefreshToken("fam", "app", grant, 5000))
    stores.refresh_tokens.save("r2", RefreshToken("fam", "app", grant, 5000))
    stores.refresh_tokens.save("o1", RefreshToken("other", "app", grant, 5000))
    assert stores.refresh_tokens.rotate("r1", 1000) == RefreshToken("fam", "app", grant, 5000)
    assert stores.refresh_tokens.rotate("r1", 1000) is None  # replay...
    assert stores.refresh_tokens.rotate("r2", 1000) is None  # ...revoked the family
    assert stores.refresh_tokens.rotate("o1", 5000) is None  # expired
    assert stores.refresh_tokens.rotate("unknown", 1000) is None
