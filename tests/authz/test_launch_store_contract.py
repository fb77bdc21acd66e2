"""One contract suite for the EHR-launch stores, run on SQLite, on a real PostgreSQL and in
memory (``contract_stores``): launches are single use and expire; launch URLs upsert; EHR
sessions expire."""

from __future__ import annotations

import threading

import pytest

from smartrealm.authz.launch_store import EhrSession, EhrStores
from smartrealm.authz.maintenance import purgeable_stores
from smartrealm.authz.records import Stores
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.authz.stores.sql_launch import sql_ehr_stores
from smartrealm.oauth.launch import LaunchContext
from smartrealm.storage import make_engine

NOW = 1_700_000_000


def _stores(sql_url: str) -> EhrStores:
    return sql_ehr_stores(make_engine(sql_url))


@pytest.fixture
def ehr(contract_stores: Stores) -> EhrStores:
    return contract_stores.ehr


def _launch(expires_at: int = NOW + 300, **overrides: object) -> LaunchContext:
    values: dict[str, object] = {
        "user": "clinician", "patient": "p0003", "iss": "http://127.0.0.1:8701/fhir",
        "expires_at": expires_at, "encounter": "enc-p0003-1",
        "fhir_context": ({"reference": "List/1", "role": "https://example.org/role/x"},),
        "need_patient_banner": False, "smart_style_url": "http://127.0.0.1:8700/s.json?v=1",
        "intent": "reconcile", "client_id": "app", "created_at": NOW}
    values.update(overrides)
    return LaunchContext(**values)  # type: ignore[arg-type]


def test_a_launch_round_trips_and_is_single_use(ehr: EhrStores) -> None:
    stores = ehr
    launch = _launch()
    stores.launches.save("h1", launch)
    assert stores.launches.claim("h1", NOW) == launch
    assert stores.launches.claim("h1", NOW) is None


def test_an_unknown_or_expired_launch_cannot_be_claimed(ehr: EhrStores) -> None:
    stores = ehr
    stores.launches.save("h1", _launch(expires_at=NOW + 300))
    assert stores.launches.claim("nope", NOW) is None
    assert stores.launches.claim("h1", NOW + 300) is None  # expiry is exclusive
    stores.launches.save("h2", _launch(expires_at=NOW + 300))
    assert stores.launches.claim("h2", NOW + 299) is not None


def test_optional_fields_survive_as_none(ehr: EhrStores) -> None:
    stores = ehr
    launch = _launch(encounter=None, fhir_context=(), smart_style_url=None, intent=None,
                     client_id=None, need_patient_banner=True)
    stores.launches.save("h", launch)
    assert stores.launches.claim("h", NOW) == launch


def test_concurrent_claims_succeed_once(ehr: EhrStores) -> None:
    stores = ehr
    stores.launches.save("race", _launch())
    results: list[LaunchContext | None] = []
    threads = [threading.Thread(target=lambda: results.append(
        stores.launches.claim("race", NOW))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1


def test_saving_purges_long_expired_launches(ehr: EhrStores) -> None:
    stores = ehr
    stores.launches.save("old", _launch(expires_at=NOW))
    stores.launches.save("new", _launch(expires_at=NOW + 10 * 3600))
    # The old row is gone, so even a clock set back cannot claim it.
    assert stores.launches.claim("old", NOW - 100) is None


def test_app_launch_urls_upsert_list_and_delete(ehr: EhrStores) -> None:
    urls = ehr.app_launch_urls
    assert urls.get("b") is None and urls.all() == []
    urls.put("b", "http://127.0.0.1:9/b/launch")
    urls.put("a", "https://a.example/launch")
    urls.put("b", "http://127.0.0.1:9/b/launch2")
    assert urls.get("b") == "http://127.0.0.1:9/b/launch2"
    assert urls.all() == [("a", "https://a.example/launch"),
                          ("b", "http://127.0.0.1:9/b/launch2")]
    urls.delete("a")
    assert urls.all() == [("b", "http://127.0.0.1:9/b/launch2")]


def test_ehr_sessions_expire_update_and_delete(ehr: EhrStores) -> None:
    sessions = ehr.sessions
    session = EhrSession(csrf="c", expires_at=NOW + 60)
    sessions.create("k", session)
    assert sessions.get("k", NOW) == session
    assert sessions.get("k", NOW + 60) is None
    signed_in = EhrSession(csrf="c", expires_at=NOW + 600, username="clinician")
    sessions.update("k", signed_in)
    assert sessions.get("k", NOW + 60) == signed_in
    sessions.delete("k")
    assert sessions.get("k", NOW) is None
    assert sessions.get("unknown", NOW) is None


def test_two_store_instances_share_the_database(sql_url: str) -> None:
    """Every AS process opens its own stores on the realm database."""
    first, second = _stores(sql_url), _stores(sql_url)
    first.launches.save("shared", _launch())
    assert second.launches.claim("shared", NOW) is not None
    assert first.launches.claim("shared", NOW) is None


def test_purge_deletes_expired_launches_and_sessions(ehr: EhrStores) -> None:
    stores = ehr
    stores.launches.save("old", _launch(expires_at=NOW))
    stores.launches.save("new", _launch(expires_at=NOW + 300))
    stores.sessions.create("s-old", EhrSession(csrf="c", expires_at=NOW))
    stores.sessions.create("s-new", EhrSession(csrf="c", expires_at=NOW + 300))
    assert stores.launches.purge(NOW) == 1 and stores.sessions.purge(NOW) == 1
    assert stores.launches.purge(NOW) == 0  # idempotent
    assert stores.launches.claim("new", NOW) is not None
    assert stores.sessions.get("s-new", NOW) is not None


def test_the_maintenance_purge_finds_the_ehr_stores(sql_url: str) -> None:
    names = set(purgeable_stores(sql_stores(make_engine(sql_url))))
    assert {"ehr.launches", "ehr.sessions"} <= names
