"""The `smartrealm app` machinery without a realm: the profile files, PATH parsing, the
loopback receiver on a real socket, expiry text and the sequential fallback's steps."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.appcli.connect import _authorizations
from smartrealm.appcli.fetch import AppUsageError, split_path
from smartrealm.appcli.loopback import LoopbackReceiver
from smartrealm.appcli.profile import Connection, Grant, Profile, default_alias
from smartrealm.appcli.report import expiry_text
from smartrealm.client import TokenSet
from smartrealm.client.discovery import SmartConfiguration
from smartrealm.client.planning import ServerFacts, plan_scopes
from smartrealm.client.storage import TokenStoreError

EHR = "http://127.0.0.1:8701/fhir"
IMAGING = "http://127.0.0.1:8702/fhir"


def connection(alias: str = "realm") -> Connection:
    return Connection(alias, EHR, "patient/*.rs", (
        Grant(alias, "cid", "http://127.0.0.1:8700/token", (EHR, IMAGING)),))


def test_profile_saves_privately_and_finds_by_alias_iss_or_server(tmp_path: Path) -> None:
    profile = Profile(tmp_path / "home")
    profile.save(connection())
    assert stat.S_IMODE((tmp_path / "home" / "apps.json").stat().st_mode) == 0o600
    assert profile.find("realm") == connection()
    assert profile.find("HTTP://127.0.0.1:8701/fhir/") == connection()
    assert profile.find(IMAGING) == connection()
    assert profile.find("http://127.0.0.1:8703/fhir") is None
    assert profile.find("other") is None


def test_profile_rejects_a_foreign_apps_file(tmp_path: Path) -> None:
    (tmp_path / "apps.json").write_text('{"version": 1, "apps": {"x": {"alias": "x"}}}')
    os.chmod(tmp_path / "apps.json", 0o600)
    with pytest.raises(TokenStoreError, match="not a version 1 apps file"):
        Profile(tmp_path).connections()


def test_home_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMARTREALM_HOME", str(tmp_path / "explicit"))
    assert Profile().directory == tmp_path / "explicit"
    monkeypatch.delenv("SMARTREALM_HOME")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert Profile().directory == tmp_path / "xdg" / "smartrealm"


def test_default_alias() -> None:
    assert default_alias(EHR) == "127.0.0.1-8701-fhir"
    assert default_alias("https://ehr.example.org/") == "ehr.example.org"


@pytest.mark.parametrize(("path", "expected"), [
    ("Patient/p0012", ("Patient", "p0012", {})),
    ("/Patient", ("Patient", None, {})),
    ("Observation?category=vital-signs&_count=2",
     ("Observation", None, {"category": "vital-signs", "_count": "2"})),
])
def test_split_path(path: str, expected: tuple[str, str | None, dict[str, str]]) -> None:
    assert split_path(path) == expected


@pytest.mark.parametrize("path", ["", "/", "Patient/p1/_history/1", "Patient/p1?x=1", "?a=b"])
def test_split_path_rejects(path: str) -> None:
    with pytest.raises(AppUsageError, match="must be TYPE/ID, TYPE or TYPE"):
        split_path(path)


@given(st.text())
def test_split_path_never_crashes(path: str) -> None:
    try:
        resource_type, _id, params = split_path(path)
    except AppUsageError:
        return
    assert resource_type and "?" not in resource_type and isinstance(params, dict)


async def test_loopback_ignores_other_paths_and_returns_the_callback() -> None:
    async with LoopbackReceiver() as receiver, httpx.AsyncClient() as browser:
        assert receiver.redirect_uri == f"http://127.0.0.1:{receiver.port}/callback"
        miss = await browser.get(f"http://127.0.0.1:{receiver.port}/favicon.ico")
        assert miss.status_code == 404
        hit = await browser.get(receiver.redirect_uri + "?code=c&state=s")
        assert hit.status_code == 200 and hit.headers["cache-control"] == "no-store"
        assert await receiver.wait(5) == receiver.redirect_uri + "?code=c&state=s"
        with pytest.raises(asyncio.TimeoutError):
            await receiver.wait(0.05)


def test_expiry_text() -> None:
    tokens = TokenSet.from_response({"access_token": "a", "token_type": "Bearer",
                                     "expires_in": 3600}, now=0.0)
    assert expiry_text(tokens, now=0.0) == "in 1 h 0 min (1970-01-01T01:00:00+00:00)"
    assert expiry_text(tokens, now=3500.0) == "in 1 min 40 s (1970-01-01T01:00:00+00:00)"
    assert expiry_text(tokens, now=3610.0).startswith("expired 10 s ago")


def config(base: str) -> SmartConfiguration:
    return SmartConfiguration(base, "http://as/authorize", "http://as/token", None, None, None,
                              (), (), (), None, None, {})


def test_fallback_is_one_authorization_per_server_with_its_own_scopes() -> None:
    configs = [config(EHR), config(IMAGING)]
    plan = plan_scopes("patient/Encounter.rs patient/ImagingStudy.rs", [
        ServerFacts(EHR, (), frozenset({"Encounter"})),
        ServerFacts(IMAGING, (), frozenset({"ImagingStudy"}))])
    shared = _authorizations(configs, plan, reuse=True)
    assert [(len(a.configs), a.scope) for a in shared] == [
        (2, "patient/Encounter.rs patient/ImagingStudy.rs")]
    steps = _authorizations(configs, plan, reuse=False)
    assert [(a.configs[0].base_url, a.scope) for a in steps] == [
        (EHR, "patient/Encounter.rs"), (IMAGING, "patient/ImagingStudy.rs")]
