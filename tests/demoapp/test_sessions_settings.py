"""Server-side sessions and the settings the demo app takes from its realm."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from smartrealm.demoapp.sessions import SessionStore
from smartrealm.demoapp.settings import STANDALONE_SCOPE, demo_settings
from smartrealm.realm.config import load_config


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_is_found_by_its_cookie_until_it_expires() -> None:
    clock = Clock()
    store = SessionStore(clock, lifetime=60)
    key, session = store.create()
    assert len(key) >= 43 and store.get(key) is session
    assert store.get(key + "x") is None and store.get(None) is None and store.get("") is None
    clock.now += 59
    assert store.get(key) is session
    clock.now += 1
    assert store.get(key) is None


def test_keys_are_kept_only_hashed() -> None:
    store = SessionStore()
    key, _ = store.create()
    assert key not in repr(store._items)  # the raw cookie value is not stored


def test_deleting_and_the_capacity_bound() -> None:
    clock = Clock()
    store = SessionStore(clock, capacity=2)
    first, _ = store.create()
    second, _ = store.create()
    third, _ = store.create()
    assert len(store) == 2
    assert store.get(first) is None and store.get(second) is not None
    store.delete(second)
    store.delete(None)
    assert store.get(second) is None and store.get(third) is not None


def test_expired_sessions_are_purged_when_a_new_one_starts() -> None:
    clock = Clock()
    store = SessionStore(clock, lifetime=10)
    store.create()
    clock.now += 11
    store.create()
    assert len(store) == 1


def test_settings_of_the_default_realm() -> None:
    realm = load_config()
    settings = demo_settings(realm)
    assert settings is not None
    assert settings.base_url == "http://127.0.0.1:8700/demo-app"
    assert settings.path == "/demo-app"
    assert settings.client_id == "smartrealm-demo-app"
    client = next(c for c in realm.clients if c.client_id == settings.client_id)
    assert settings.redirect_uri in client.redirect_uris
    assert settings.launch_url == "http://127.0.0.1:8700/demo-app/launch"
    assert settings.ehr_base == "http://127.0.0.1:8701/fhir"
    assert settings.imaging_base == "http://127.0.0.1:8702/fhir"
    assert settings.authorization_endpoint == "http://127.0.0.1:8700/authorize"
    assert STANDALONE_SCOPE.split()[0] == "launch/patient"


def test_a_relocated_realm_keeps_the_app_consistent(tmp_path: Path) -> None:
    realm = load_config().relocated({"auth_server": 9100, "ehr": 9101, "imaging": 9102},
                                    tmp_path)
    settings = demo_settings(realm)
    assert settings is not None
    client = next(c for c in realm.clients if c.client_id == settings.client_id)
    assert settings.redirect_uri == "http://127.0.0.1:9100/demo-app/callback"
    assert settings.redirect_uri in client.redirect_uris
    assert settings.launch_url == "http://127.0.0.1:9100/demo-app/launch"
    assert settings.ehr_base == "http://127.0.0.1:9101/fhir"


def test_iss_must_be_one_of_the_realm_servers() -> None:
    settings = demo_settings(load_config())
    assert settings is not None
    assert settings.trusts("http://127.0.0.1:8701/fhir")
    assert settings.trusts("HTTP://127.0.0.1:8702/fhir/")  # compared normalised
    assert not settings.trusts("http://127.0.0.1:8701/fhir/other")
    assert not settings.trusts("https://evil.example/fhir")
    assert not settings.trusts("http://[::1")  # not even a URL


def test_no_app_without_its_client_or_without_an_imaging_server() -> None:
    realm = load_config()
    assert demo_settings(replace(realm, clients=())) is None
    ehr_only = tuple(rs for rs in realm.resource_servers if rs.profile != "imaging")
    assert demo_settings(replace(realm, resource_servers=ehr_only)) is None
