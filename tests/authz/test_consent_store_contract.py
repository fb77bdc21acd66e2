"""Contract suites of the lockout, remembered-consent and app-access stores, run on every
backend (``sql_url``: SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from smartrealm.authz.consent_store import RememberedConsent
from smartrealm.authz.lockout import LoginPolicy
from smartrealm.authz.records import Stores
from smartrealm.oauth.grants import Grant, ServerGrant
from smartrealm.oauth.store import RefreshToken

POLICY = LoginPolicy(max_failures=3, lock_seconds=100, window=50)


@pytest.fixture
def stores(contract_stores: Stores) -> Stores:
    return contract_stores  # SQLite, PostgreSQL and in memory (tests/authz/conftest.py)


def test_failures_count_then_lock(stores: Stores) -> None:
    s = stores.login_failures
    assert s.locked_until("ann", 1000) == 0
    assert s.record_failure("ann", 1000, POLICY).failures == 1
    assert s.record_failure("ann", 1001, POLICY).failures == 2
    third = s.record_failure("ann", 1002, POLICY)
    assert third.locked_until == 1102 and third.failures == 3
    assert s.locked_until("ann", 1101) == 1102 and s.locked_until("ann", 1102) == 0
    assert s.locked_until("bob", 1050) == 0  # per user name


def test_failures_outside_the_window_restart_the_count(stores: Stores) -> None:
    s = stores.login_failures
    s.record_failure("ann", 1000, POLICY)
    s.record_failure("ann", 1001, POLICY)
    assert s.record_failure("ann", 1060, POLICY).failures == 1  # 1000 + 50 < 1060
    assert s.record_failure("ann", 1061, POLICY).failures == 2
    assert s.locked_until("ann", 1062) == 0


def test_clear_forgets_failures(stores: Stores) -> None:
    s = stores.login_failures
    s.record_failure("ann", 1000, POLICY)
    s.record_failure("ann", 1000, POLICY)
    s.clear("ann")
    assert s.record_failure("ann", 1000, POLICY).failures == 1


def test_any_user_name_can_be_counted(stores: Stores) -> None:
    # Keys are hashes: long, odd or unicode names never hit the column size.
    name = "ü" * 1000 + "'; DROP TABLE x; --"
    assert stores.login_failures.record_failure(name, 1, POLICY).failures == 1


def _consent(client: str = "app", approved: tuple[str, ...] = ("patient/Patient.rs",)
             ) -> RememberedConsent:
    return RememberedConsent("ann", client, {"ehr": ("launch/patient", "patient/Patient.rs")},
                             {"ehr": approved}, ("openid", "offline_access"), ("openid",), 7)


def test_consents_put_get_replace_list_delete(stores: Stores) -> None:
    c = stores.consents
    assert c.get("ann", "app") is None
    c.put(_consent())
    assert c.get("ann", "app") == _consent()
    c.put(_consent(approved=()))
    assert c.get("ann", "app") == _consent(approved=())
    c.put(_consent("other"))
    assert [x.client_id for x in c.list_for("ann")] == ["app", "other"]
    assert c.list_for("bob") == []
    assert c.delete("ann", "app") is True and c.delete("ann", "app") is False
    assert c.get("ann", "app") is None and c.get("ann", "other") is not None


def _refresh(family: str, client: str, subject: str, expires_at: int) -> RefreshToken:
    grant = Grant(client, subject, (ServerGrant("ehr", "http://h/fhir", "4.0.1",
                                                ("patient/*.rs",), "p1"),), ("offline_access",))
    return RefreshToken(family, client, grant, expires_at)


def test_app_access_lists_and_revokes_live_refresh_families(stores: Stores) -> None:
    r, apps = stores.refresh_tokens, stores.app_access
    r.save("t1", _refresh("f1", "app", "ann", 5000))
    r.save("t2", _refresh("f2", "app", "ann", 6000))
    r.save("t3", _refresh("f3", "other", "ann", 5000))
    r.save("t4", _refresh("f4", "app", "bob", 5000))
    r.save("t5", _refresh("f5", "old", "ann", 900))  # expired
    listed = {a.client_id: a for a in apps.active("ann", 1000)}
    assert set(listed) == {"app", "other"}
    assert listed["app"].grants == 2 and listed["app"].expires_at == 6000
    assert listed["app"].scope == "patient/*.rs offline_access"
    assert apps.revoke("ann", "app", 1000) == ["f1", "f2"]
    assert [a.client_id for a in apps.active("ann", 1000)] == ["other"]
    assert r.rotate("t1", 1000) is None  # the family is revoked at the token endpoint too
    assert [a.client_id for a in apps.active("bob", 1000)] == ["app"]  # bob untouched
    assert apps.revoke("ann", "nothing", 1000) == []
