"""Issue 5 against a live realm (one uvicorn process per component): a realm server that does
not offer multi-audience tokens (``multi_aud_token = false``), the AS refusing it in a
multi-server request, and the library's fallback to one SMART launch per server; then the
automatic refresh-and-retry on a real 401 once the access token has expired.

The realm is the default one with: the lab without ``auth-multi-aud-token``; imaging checking
tokens by introspection (it sees expiry to the second and revocations at once, where a
``jwt`` server allows 30 s of clock leeway); ``access_token_lifetime = 30``, the minimum the
configuration accepts."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from smartrealm.client import FhirSession, FhirUnauthorized, PublicClient, RealmApp, TokenError
from smartrealm.client.auth import AuthorizationRequest, parse_callback, register_client
from smartrealm.client.errors import InvalidGrant, InvalidTarget
from smartrealm.client.token_endpoint import refresh
from smartrealm.client.tokens import TokenSet
from smartrealm.devtools.useragent import authorize_as_user
from smartrealm.realm.config import RealmConfig, default_config_text, load_config
from smartrealm.realm.runner import AUTH_SERVER, Launch, free_ports, running_realm
from tests.e2e.flow import PASSWORDS, REDIRECT_URI

pytestmark = pytest.mark.e2e
MULTI = "auth-multi-aud-token"
LIFETIME = 30  # auth_server.access_token_lifetime: the configuration's minimum
SCOPE = "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Observation.rs"


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealmConfig]:
    data_dir = tmp_path_factory.mktemp("fallback-refresh-realm")
    text = (default_config_text()
            .replace("access_token_lifetime = 3600\n", f"access_token_lifetime = {LIFETIME}\n")
            .replace('profile = "lab"\n', 'profile = "lab"\nmulti_aud_token = false\n')
            .replace('profile = "imaging"\n',
                     'profile = "imaging"\ntoken_check = "introspection"\n'))
    path = data_dir / "realm.toml"
    path.write_text(text)
    base = load_config(path)
    assert base.auth_server.access_token_lifetime == LIFETIME
    assert not base.server("lab").multi_aud_token and base.server("ehr").multi_aud_token
    assert base.server("imaging").token_check == "introspection"
    ports = free_ports([AUTH_SERVER, *(rs.id for rs in base.resource_servers)])
    config = base.relocated(ports, data_dir)
    with running_realm(config, Launch(path, ports, data_dir)) as running:
        yield config
        assert not running.exited(), f"a component died: {running.exited()}"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15.0) as client:
        yield client


async def _public_client(http: httpx.AsyncClient, realm: RealmConfig) -> PublicClient:
    client = await register_client(http, realm.auth_server.registration_endpoint,
                                   redirect_uris=[REDIRECT_URI], client_name="fallback e2e",
                                   scope=SCOPE)
    return PublicClient(str(client["client_id"]))


async def _run(app: RealmApp) -> int:
    """The patient logs in and approves every step; returns how many it took."""
    url: str | None = app.begin()
    steps = 0
    while url is not None:
        async with httpx.AsyncClient(timeout=15) as browser:
            callback = await authorize_as_user(browser, url, REDIRECT_URI, username="patient",
                                               password=PASSWORDS["patient"])
        url = await app.complete(callback)
        steps += 1
    return steps


def _claims(access_token: str) -> dict[str, Any]:
    payload = access_token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return decoded


# ----------------------------------------------------------------- multi_aud_token = false


async def test_discovery_shows_the_lab_without_the_capability(
        realm: RealmConfig, http: httpx.AsyncClient) -> None:
    ehr, lab = realm.server("ehr").base_url, realm.server("lab").base_url
    lab_config = (await http.get(f"{lab}/.well-known/smart-configuration")).json()
    assert MULTI not in lab_config["capabilities"] and "context-style" in lab_config["capabilities"]
    ehr_config = (await http.get(f"{ehr}/.well-known/smart-configuration")).json()
    assert MULTI in ehr_config["capabilities"]
    assert {e["url"]: e["capabilities"] for e in ehr_config["associated_endpoints"]} == {
        realm.server("imaging").base_url: [MULTI], lab: []}


async def test_the_as_refuses_a_shared_token_for_the_lab(realm: RealmConfig,
                                                         http: httpx.AsyncClient) -> None:
    ehr, lab = realm.server("ehr").base_url, realm.server("lab").base_url
    client = await _public_client(http, realm)
    request = AuthorizationRequest.create(
        authorization_endpoint=realm.auth_server.authorization_endpoint,
        client_id=client.client_id, redirect_uri=REDIRECT_URI, scope=SCOPE, resources=[ehr, lab])
    response = await http.get(request.url)  # no login: refused before any page
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    with pytest.raises(InvalidTarget) as refused:
        parse_callback(location, request)  # state matches; the error is mapped
    assert refused.value.description == (
        f"{lab} does not advertise {MULTI}: it cannot share a token with other servers")
    # Each server alone is an ordinary SMART launch and needs no capability.
    alone = AuthorizationRequest.create(
        authorization_endpoint=realm.auth_server.authorization_endpoint,
        client_id=client.client_id, redirect_uri=REDIRECT_URI, scope=SCOPE, resources=[lab])
    to_login = await http.get(alone.url)
    assert to_login.status_code == 303
    assert to_login.headers["location"] == "/interaction/login"  # not an error redirect


async def test_library_falls_back_to_one_launch_per_server(realm: RealmConfig,
                                                           http: httpx.AsyncClient) -> None:
    ehr, lab = realm.server("ehr").base_url, realm.server("lab").base_url
    app = RealmApp(http, client=await _public_client(http, realm), redirect_uri=REDIRECT_URI,
                   scope=SCOPE)
    decision = await app.prepare([ehr, lab])
    assert decision.reasons == (f"{lab}: does not advertise the {MULTI} capability",)
    assert app.mode == "sequential"
    assert await _run(app) == 2
    ehr_tokens, lab_tokens = app.tokens_for(ehr), app.tokens_for(lab)
    assert ehr_tokens.access_token != lab_tokens.access_token
    assert (_claims(ehr_tokens.access_token)["aud"], _claims(lab_tokens.access_token)["aud"]) \
        == ([ehr], [lab])
    ehr_session, lab_session = app.session(ehr), app.session(lab)
    assert (ehr_session.patient_id, lab_session.patient_id) == ("p0012", "lab0012")
    ehr_patient = await ehr_session.read("Patient", "p0012")
    lab_patient = await lab_session.read("Patient", "lab0012")
    assert ehr_patient["identifier"][0]["value"] == lab_patient["identifier"][0]["value"] \
        == "MRN000012"
    with pytest.raises(FhirUnauthorized) as other:  # each token is for its own server only
        await FhirSession(http, lab, ehr_tokens).read("Patient", "lab0012")
    assert other.value.error == "invalid_token"


# ----------------------------------------------------------------- refresh and retry on 401


async def _wait_until_refused(http: httpx.AsyncClient, url: str, access_token: str,
                              timeout: float) -> float:
    """Poll until the real server answers 401 to this token; return when it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await http.get(url, headers={"Authorization": f"Bearer {access_token}",
                                                "Accept": "application/fhir+json"})
        if response.status_code == 401:
            return time.time()
        assert response.status_code == 200, response.text
        await asyncio.sleep(1.0)
    raise AssertionError(f"{url} still accepts the token after {timeout} s")


async def test_expired_token_is_refreshed_once_and_the_read_retried(
        realm: RealmConfig, http: httpx.AsyncClient) -> None:
    ehr, imaging = realm.server("ehr").base_url, realm.server("imaging").base_url
    client = await _public_client(http, realm)
    app = RealmApp(http, client=client, redirect_uri=REDIRECT_URI, scope=SCOPE)
    await app.prepare([ehr, imaging], plan=False)
    assert await _run(app) == 1
    first = app.tokens_for(imaging)
    assert first.expires_in == LIFETIME and first.refresh_token is not None
    expired_at = await _wait_until_refused(http, f"{imaging}/Patient/img0012",
                                           first.access_token, timeout=LIFETIME + 20)
    assert first.expires_at is not None and expired_at >= first.expires_at - 1

    # The session sees the real 401, refreshes (rotation) and retries once.
    assert (await app.session(imaging).read("Patient", "img0012"))["id"] == "img0012"
    second = app.tokens_for(imaging)
    assert second.access_token != first.access_token
    assert second.refresh_token not in (None, first.refresh_token)
    assert app.tokens_for(ehr) == second  # the shared token serves the EHR too
    assert (await app.session(ehr).read("Patient", "p0012"))["id"] == "p0012"

    # A 401 after the refresh is not retried again: here the refreshed access token is
    # revoked before the retry, so imaging (introspection) refuses it too.
    refresher, calls = app.refresher_for(imaging), list[str]()

    async def refresh_then_revoke(refused: str) -> TokenSet:
        calls.append(refused)
        fresh = await refresher.refresh_now()
        revoked = await http.post(realm.auth_server.revocation_endpoint, data={
            "token": fresh.access_token, "token_type_hint": "access_token",
            "client_id": client.client_id})
        assert revoked.status_code == 200
        return fresh

    session = FhirSession(http, imaging, first.access_token, refresher=refresh_then_revoke)
    with pytest.raises(FhirUnauthorized) as twice:
        await session.read("Patient", "img0012")
    assert calls == [first.access_token] and twice.value.error == "invalid_token"
    third = app.tokens_for(imaging)
    assert third.refresh_token not in (None, first.refresh_token, second.refresh_token)

    # Rotation: the replaced refresh token is refused (and its replay ends the grant).
    with pytest.raises(TokenError) as replay:
        await refresh(http, realm.auth_server.token_endpoint, first, client_id=client.client_id)
    assert isinstance(replay.value.oauth, InvalidGrant) and replay.value.status == 400
    with pytest.raises(TokenError) as ended:
        await refresher.refresh_now()
    assert isinstance(ended.value.oauth, InvalidGrant)
