"""Token lifecycle on a real realm (every component its own process): introspection from each
server's point of view, revocation, refresh-family revocation, code replay, and key rotation
picked up by the running AS. In this realm the imaging server checks tokens by introspection
(``token_check = "introspection"``); the EHR and the lab check signatures (the default)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartrealm.client.auth import AuthorizationRequest
from smartrealm.client.token_endpoint import exchange_code
from smartrealm.client.tokens import TokenSet
from smartrealm.oauth.key_rotation import PREPUBLISH, RELOAD_INTERVAL
from smartrealm.realm.config import RealmConfig, default_config_text, load_config
from smartrealm.realm.runner import AUTH_SERVER, Launch, free_ports, running_realm
from smartrealm.storage.rs_credentials import resource_server_secret
from tests.e2e.flow import SCOPE, App, authorize, register_app

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "smartrealm.cli"]
OFFLINE_SCOPE = SCOPE + " offline_access"


@dataclass(frozen=True)
class Realm:
    config: RealmConfig
    config_path: Path
    data_dir: Path

    def base(self, server_id: str) -> str:
        return self.config.server(server_id).base_url


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realm]:
    """The default realm with imaging in introspection mode."""
    tmp = tmp_path_factory.mktemp("introspection-realm")
    text = default_config_text().replace('profile = "imaging"\n',
                                         'profile = "imaging"\ntoken_check = "introspection"\n')
    path = tmp / "realm.toml"
    path.write_text(text)
    base = load_config(path)
    assert base.server("imaging").token_check == "introspection"
    ports = free_ports([AUTH_SERVER, *(rs.id for rs in base.resource_servers)])
    data_dir = tmp / "state"
    config = base.relocated(ports, data_dir)
    with running_realm(config, Launch(path, ports, data_dir)) as running:
        yield Realm(config, path, data_dir)
        assert not running.exited(), f"a component died: {running.exited()}"


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient(timeout=15.0) as client:
        yield client


def _rs_auth(realm: Realm, server_id: str) -> httpx.BasicAuth:
    # RFC 6749 §2.3.1: the client_id is form-encoded inside Basic.
    return httpx.BasicAuth("rs%3A" + server_id, resource_server_secret(realm.config, server_id))


async def _introspect(http: httpx.AsyncClient, realm: Realm, token: str,
                      server_id: str = "ehr") -> dict[str, Any]:
    response = await http.post(realm.config.auth_server.introspection_endpoint,
                               data={"token": token}, auth=_rs_auth(realm, server_id))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _read(http: httpx.AsyncClient, realm: Realm, server_id: str, token: str,
                path: str) -> int:
    response = await http.get(f"{realm.base(server_id)}/{path}",
                              headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def _grant(http: httpx.AsyncClient, realm: Realm, scope: str = SCOPE
                 ) -> tuple[App, AuthorizationRequest, str]:
    app = await register_app(http, realm.config, scope=scope)
    request, code = await authorize(http, app, resources=[realm.base("ehr"),
                                                          realm.base("imaging")], scope=scope)
    return app, request, code


async def _tokens(http: httpx.AsyncClient, realm: Realm, scope: str = SCOPE
                  ) -> tuple[App, TokenSet]:
    app, request, code = await _grant(http, realm, scope)
    tokens = await exchange_code(http, app.token_endpoint, request, code,
                                 client_id=app.client_id)
    return app, tokens


async def test_each_server_introspects_its_own_share(http: httpx.AsyncClient,
                                                     realm: Realm) -> None:
    _, tokens = await _tokens(http, realm)
    ehr = await _introspect(http, realm, tokens.access_token, "ehr")
    imaging = await _introspect(http, realm, tokens.access_token, "imaging")
    assert ehr["active"] is True and imaging["active"] is True
    assert ehr["patient"] == "p0012" and imaging["patient"] == "img0012"
    assert ehr["aud"] == imaging["aud"] == [realm.base("ehr"), realm.base("imaging")]
    # Its own data scopes, plus the scopes of no server (SMART §7.1: as in the response).
    identity = ["openid", "fhirUser"]
    assert ehr["scope"].split() == [*tokens.scopes_for(realm.base("ehr")), *identity]
    assert imaging["scope"].split() == [*tokens.scopes_for(realm.base("imaging")), *identity]
    assert ehr["authorization_details"] == list(tokens.authorization_details)
    # The lab is not in the audience: for it the token is not active.
    assert await _introspect(http, realm, tokens.access_token, "lab") == {"active": False}
    # Both modes accept an active token.
    assert await _read(http, realm, "ehr", tokens.access_token, "Patient/p0012") == 200
    assert await _read(http, realm, "imaging", tokens.access_token, "Patient/img0012") == 200


async def test_every_discovery_document_names_the_endpoints(http: httpx.AsyncClient,
                                                             realm: Realm) -> None:
    auth = realm.config.auth_server
    for server_id in ("ehr", "imaging", "lab"):
        smart = (await http.get(f"{realm.base(server_id)}/.well-known/smart-configuration")
                 ).json()
        assert smart["introspection_endpoint"] == auth.introspection_endpoint
        assert smart["revocation_endpoint"] == auth.revocation_endpoint
        security = (await http.get(f"{realm.base(server_id)}/metadata")).json()["rest"][0][
            "security"]
        uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
        assert uris["introspect"] == auth.introspection_endpoint
        assert uris["revoke"] == auth.revocation_endpoint
    openid = (await http.get(f"{auth.issuer}/.well-known/openid-configuration")).json()
    assert openid["introspection_endpoint"] == auth.introspection_endpoint
    assert openid["revocation_endpoint"] == auth.revocation_endpoint


async def test_revocation_bites_at_the_introspection_mode_server(http: httpx.AsyncClient,
                                                                  realm: Realm) -> None:
    app, tokens = await _tokens(http, realm)
    assert await _read(http, realm, "ehr", tokens.access_token, "Patient/p0012") == 200
    revoked = await http.post(realm.config.auth_server.revocation_endpoint,
                              data={"token": tokens.access_token, "client_id": app.client_id})
    assert revoked.status_code == 200
    assert await _introspect(http, realm, tokens.access_token) == {"active": False}
    # Imaging asks the AS: 401 now. The EHR checks the signature only: it accepts the token
    # until it expires (docs/behaviour.md "Revocation").
    response = await http.get(f"{realm.base('imaging')}/Patient/img0012",
                              headers={"Authorization": f"Bearer {tokens.access_token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["resourceType"] == "OperationOutcome"
    assert await _read(http, realm, "ehr", tokens.access_token, "Patient/p0012") == 200


async def test_revoking_the_refresh_token_ends_the_family(http: httpx.AsyncClient,
                                                          realm: Realm) -> None:
    app, tokens = await _tokens(http, realm, OFFLINE_SCOPE)
    assert tokens.refresh_token is not None
    token_url = realm.config.auth_server.token_endpoint
    renewed = await http.post(token_url, data={
        "grant_type": "refresh_token", "refresh_token": tokens.refresh_token,
        "client_id": app.client_id})
    assert renewed.status_code == 200, renewed.text
    latest = renewed.json()
    revoked = await http.post(realm.config.auth_server.revocation_endpoint, data={
        "token": latest["refresh_token"], "token_type_hint": "refresh_token",
        "client_id": app.client_id})
    assert revoked.status_code == 200
    for token in (tokens.access_token, latest["access_token"], latest["refresh_token"]):
        assert await _introspect(http, realm, token) == {"active": False}
    again = await http.post(token_url, data={
        "grant_type": "refresh_token", "refresh_token": latest["refresh_token"],
        "client_id": app.client_id})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert await _read(http, realm, "imaging", latest["access_token"], "Patient/img0012") == 401


async def test_a_replayed_code_revokes_the_first_exchange(http: httpx.AsyncClient,
                                                          realm: Realm) -> None:
    app, request, code = await _grant(http, realm, OFFLINE_SCOPE)
    form = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": request.redirect_uri, "code_verifier": request.code_verifier,
            "client_id": app.client_id}
    first = await http.post(app.token_endpoint, data=form)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert (await _introspect(http, realm, tokens["access_token"]))["active"] is True
    replay = await http.post(app.token_endpoint, data=form)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert await _introspect(http, realm, tokens["access_token"]) == {"active": False}
    assert await _introspect(http, realm, tokens["refresh_token"]) == {"active": False}
    assert await _read(http, realm, "imaging", tokens["access_token"], "Patient/img0012") == 401


def _kid(jwt: str) -> str:
    header = jwt.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def _cli(realm: Realm, *args: str) -> str:
    result = subprocess.run([*CLI, *args, "--config", str(realm.config_path), "--data-dir",
                             str(realm.data_dir)], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def test_key_rotation_is_picked_up_and_the_old_key_stays_published(
        http: httpx.AsyncClient, realm: Realm) -> None:
    jwks_uri = realm.config.auth_server.jwks_uri
    _, before = await _tokens(http, realm)
    old_kid = _kid(before.access_token)
    assert [k["kid"] for k in (await http.get(jwks_uri)).json()["keys"]] == [old_kid]
    rotated_at = time.time()
    out = _cli(realm, "keys", "rotate")
    new_kid = out.split("new signing key ")[1].split()[0]
    assert new_kid != old_kid
    # The running AS publishes the new key within RELOAD_INTERVAL, without a restart...
    deadline = time.monotonic() + RELOAD_INTERVAL + 5
    kids: list[str] = []
    while time.monotonic() < deadline:
        kids = [k["kid"] for k in (await http.get(jwks_uri)).json()["keys"]]
        if len(kids) == 2:
            break
        await asyncio.sleep(0.25)
    assert kids == [new_kid, old_kid]
    assert "published, not yet signing" in _cli(realm, "keys", "list")
    # ...and signs with it PREPUBLISH seconds after the rotation.
    await asyncio.sleep(max(0.0, rotated_at + PREPUBLISH + 2 - time.time()))
    _, after = await _tokens(http, realm)
    assert _kid(after.access_token) == new_kid
    # Published ahead, the new key is already known everywhere: the AS's patient lookups
    # (its own new-key tokens) worked, and the first new token is accepted at once.
    assert after.patient_id_for(realm.base("ehr")) == "p0012"
    for tokens in (before, after):  # tokens signed before the rotation keep working too
        assert (await _introspect(http, realm, tokens.access_token))["active"] is True
        assert await _read(http, realm, "ehr", tokens.access_token, "Patient/p0012") == 200
        assert await _read(http, realm, "imaging", tokens.access_token,
                           "Patient/img0012") == 200
    assert [k["kid"] for k in (await http.get(jwks_uri)).json()["keys"]] == [new_kid, old_kid]
    listing = _cli(realm, "keys", "list")
    assert new_kid in listing and old_kid in listing
    assert "signing" in listing and "retired, published" in listing


LIFECYCLE_ERRORS = {"invalid_request", "invalid_client", "invalid_token",
                    "unsupported_token_type", "unauthorized_client"}
FIELDS = ["token", "token_type_hint", "client_id", "client_secret", "x"]
field_values = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.sampled_from(["access_token", "refresh_token", "id_token", "rs:ehr", "rs:nope",
                     "smartrealm-demo-app", "a.b.c", "eyJhbGciOiJub25lIn0.e30."]))
headers = st.one_of(st.none(), st.sampled_from([
    "Basic", "Basic !!", "Basic cnM6ZWhyOg==", "Bearer", "Bearer x", "Digest x"]))


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.lists(st.tuples(st.sampled_from(FIELDS), field_values), max_size=6),
       authorization=headers, path=st.sampled_from(["/introspect", "/revoke"]))
def test_lifecycle_endpoints_never_500(realm: Realm, params: list[tuple[str, str]],
                                       authorization: str | None, path: str) -> None:
    extra = {"Authorization": authorization} if authorization else {}
    response = httpx.post(realm.config.auth_server.issuer + path, content=urlencode(params),
                          headers={"Content-Type": "application/x-www-form-urlencoded",
                                   **extra}, timeout=15.0)
    # 429: repeated wrong secrets for one client from this address are throttled (the
    # failed-client-authentication limit), still an OAuth error, never a 500.
    assert response.status_code in (200, 400, 401, 429), response.text
    if response.status_code == 429:
        assert response.json()["error"] == "invalid_client"
        assert int(response.headers["Retry-After"]) > 0
    if response.status_code != 200:
        assert response.json()["error"] in LIFECYCLE_ERRORS
