"""Contract suites of the token-lifecycle stores, on every backend (``sql_url``: SQLite and
PostgreSQL): the access-token registry, the resource servers' credentials, the refresh
store's lookup / family revocation, and every store's purge."""

from __future__ import annotations

import threading

import pytest

from smartrealm.authz.maintenance import purge, purgeable_stores
from smartrealm.authz.records import Interaction, Stores
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.oauth.grants import Grant, ServerGrant
from smartrealm.oauth.keys import generate_key
from smartrealm.oauth.store import AuthorizationCode, RefreshToken, RefreshTokenState
from smartrealm.oauth.token_registry import AccessTokenRecord, CodeLink
from smartrealm.storage import make_engine
from smartrealm.storage.key_store import SqlKeyStore

GRANT = Grant("app", "ann", (ServerGrant("ehr", "http://h/fhir", "4.0.1", ("patient/*.rs",),
                                         "p1"),), ("offline_access",))


@pytest.fixture
def stores(contract_stores: Stores) -> Stores:
    return contract_stores  # SQLite, PostgreSQL and in memory (tests/authz/conftest.py)


def _record(jti: str, family: str = "fam", expires_at: int = 2000) -> AccessTokenRecord:
    return AccessTokenRecord(jti, family, "app", 1000, expires_at,
                             {"patient": "p1", "need_patient_banner": False})


def _get(stores: Stores, jti: str) -> AccessTokenRecord:
    record = stores.tokens.get(jti)
    assert record is not None
    return record


def test_registry_records_and_revokes(stores: Stores) -> None:
    registry = stores.tokens
    assert registry.get("a") is None
    registry.record(_record("a"))
    registry.record(_record("b"))
    registry.record(_record("c", family="other"))
    record = registry.get("a")
    assert record == _record("a") and record.active(1999) and not record.active(2000)
    assert registry.revoke("a") is True and registry.revoke("nope") is False
    assert _get(stores, "a").revoked
    assert registry.revoke_family("fam") == 1  # "a" was already revoked
    assert _get(stores, "b").revoked and not _get(stores, "c").revoked


def test_registry_links_codes_to_families(stores: Stores) -> None:
    registry = stores.tokens
    assert registry.family_of_code("h") is None
    registry.link_code("h", "fam", 5000)
    registry.link_code("h", "second", 5000)  # the first link stays
    assert registry.family_of_code("h") == "fam"


def test_registry_records_a_token_with_the_code_that_started_its_family(
        stores: Stores) -> None:
    registry = stores.tokens
    registry.record(_record("a"), started_by=CodeLink("h", 5000))
    assert registry.family_of_code("h") == "fam" and _get(stores, "a") == _record("a")
    # A second link of the same code keeps the first, and the token is recorded anyway.
    registry.record(_record("b", family="second"), started_by=CodeLink("h", 5000))
    assert registry.family_of_code("h") == "fam" and _get(stores, "b").family == "second"
    # The link outlives the access tokens (expired at 2000) until its own expiry.
    assert registry.purge(4999) == 2 and registry.family_of_code("h") == "fam"
    assert registry.purge(5000) == 1 and registry.family_of_code("h") is None


def test_registry_purge_keeps_only_live_unrevoked_rows(stores: Stores) -> None:
    registry = stores.tokens
    registry.record(_record("expired", expires_at=1500))
    registry.record(_record("live", family="f2"))
    registry.record(_record("revoked", family="f3"))
    registry.revoke("revoked")
    registry.link_code("old", "fam", 1500)
    registry.link_code("new", "f2", 5000)
    assert registry.purge(1500) == 3
    assert registry.get("live") is not None
    assert registry.get("expired") is None and registry.get("revoked") is None
    assert registry.family_of_code("old") is None and registry.family_of_code("new") == "f2"


def test_refresh_lookup_and_family_revocation(stores: Stores) -> None:
    refresh = stores.refresh_tokens
    token = RefreshToken("fam", "app", GRANT, 5000)
    refresh.save("r1", token)
    refresh.save("r2", token)
    refresh.save("o1", RefreshToken("other", "app", GRANT, 5000))
    assert refresh.lookup("nope") is None
    state = refresh.lookup("r1")
    assert state == RefreshTokenState(token, used=False, revoked=False)
    assert state.active(4999) and not state.active(5000)
    refresh.rotate("r1", 1000)
    assert refresh.lookup("r1") == RefreshTokenState(token, used=True, revoked=False)
    assert refresh.revoke_family("fam") == 2
    revoked = refresh.lookup("r2")
    assert revoked is not None and revoked.revoked and refresh.rotate("r2", 1000) is None
    assert refresh.rotate("o1", 1000) is not None


def test_rs_credentials_are_created_once(stores: Stores) -> None:
    creds = stores.rs_credentials
    assert creds.secret("ehr") is None
    secret = creds.ensure("ehr")
    assert len(secret) >= 43 and creds.ensure("ehr") == secret == creds.secret("ehr")
    assert creds.ensure("imaging") != secret


def test_rs_credentials_concurrent_creators_agree(sql_url: str) -> None:
    engines = [make_engine(sql_url) for _ in range(4)]
    all_stores = [sql_stores(e) for e in engines]
    seen: list[str] = []
    threads = [threading.Thread(target=lambda s=s: seen.append(s.rs_credentials.ensure("lab")))
               for s in all_stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 4 and len(set(seen)) == 1
    for e in engines:
        e.dispose()


def test_purge_deletes_expired_rows_of_every_store(stores: Stores) -> None:
    # Newest first: saving a row purges much older ones on its own.
    stores.codes.save("c-new", AuthorizationCode("app", "https://a/cb", "c" * 43, GRANT, 90000))
    stores.codes.save("c-old", AuthorizationCode("app", "https://a/cb", "c" * 43, GRANT, 100))
    stores.interactions.create("i-new", Interaction(csrf="x", expires_at=90000, request=None))
    stores.interactions.create("i-old", Interaction(csrf="x", expires_at=100, request=None))
    stores.refresh_tokens.save("r-old", RefreshToken("f1", "app", GRANT, 100))
    stores.refresh_tokens.save("r-new", RefreshToken("f2", "app", GRANT, 90000))
    stores.refresh_tokens.save("r-rev", RefreshToken("f3", "app", GRANT, 90000))
    stores.refresh_tokens.revoke_family("f3")
    stores.tokens.record(_record("t-old", expires_at=100))
    counts = purge(stores, now=50000)
    assert counts["codes"] == 1 and counts["interactions"] == 1
    assert counts["refresh_tokens"] == 2 and counts["tokens"] == 1
    assert stores.codes.consume("c-new", 50000) is not None
    assert stores.interactions.get("i-new", 50000) is not None
    assert stores.refresh_tokens.lookup("r-new") is not None
    assert stores.refresh_tokens.lookup("r-old") is None
    assert stores.refresh_tokens.lookup("r-rev") is None
    assert purge(stores, now=50000)["codes"] == 0  # idempotent


def test_used_codes_are_kept_an_hour_for_replay_detection(stores: Stores) -> None:
    stores.codes.save("c", AuthorizationCode("app", "https://a/cb", "c" * 43, GRANT, 1000))
    assert stores.codes.consume("c", 900) is not None
    assert purge(stores, now=1500)["codes"] == 0
    assert purge(stores, now=1000 + 3601)["codes"] == 1


def test_purgeable_stores_found_by_name(stores: Stores) -> None:
    names = set(purgeable_stores(stores))
    assert {"codes", "interactions", "refresh_tokens", "tokens"} <= names


def test_key_store_remove_and_version(sql_url: str) -> None:
    engine = make_engine(sql_url)
    store = SqlKeyStore(engine)
    store.create_tables()
    empty = store.version()
    first, second = generate_key(now=100), generate_key(now=200)
    store.add(first)
    one = store.version()
    store.add(second)
    two = store.version()
    store.remove(first.kid)
    assert len({empty, one, two, store.version()}) == 4
    assert [k.kid for k in store.load()] == [second.kid]
    engine.dispose()
