"""``POST /api/launch`` (HTTP Basic as a realm user), ``GET /smart-style.json``, the
``initiate_login_uri`` registration metadata and the EHR-launch capabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from smartrealm.authz.app import build_auth_server
from smartrealm.authz.stores.sql_launch import sql_ehr_stores
from smartrealm.fhir.http.capability import smart_configuration
from smartrealm.fhir.settings import FhirSettings
from smartrealm.oauth.registration import EHR_LAUNCH
from smartrealm.oauth.smart_style import SMART_STYLE, style_url
from smartrealm.realm.config import ConfigError, RealmConfig, default_config_text, load_config
from smartrealm.storage import make_engine
from tests.authz.launch_helpers import basic, create_launch
from tests.initial_tokens import bearer

EHR_CAPABILITIES = {"launch-ehr", "context-banner", "context-style", "context-ehr-patient",
                    "context-ehr-encounter"}


async def test_created_launch_answer(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    response = await ua.post("/api/launch", headers=basic("clinician"), json={
        "patient": "p0003", "launch_url": "http://127.0.0.1:9/app/launch?tenant=x"})
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    ehr = realm.server("ehr").base_url
    assert set(body) == {"launch", "iss", "url", "expires_in"}
    assert body["iss"] == ehr and 295 <= body["expires_in"] <= 300
    assert len(body["launch"]) >= 43  # ≥ 256 bits, base64url
    assert body["url"] == httpx.URL("http://127.0.0.1:9/app/launch", params={
        "tenant": "x", "iss": ehr, "launch": body["launch"]})


async def test_two_launches_get_distinct_ids(ua: httpx.AsyncClient) -> None:
    first, second = await create_launch(ua), await create_launch(ua)
    assert first["launch"] != second["launch"]


@pytest.mark.parametrize("headers", [
    {}, basic("clinician", "wrong"), basic("nobody", "x"),
    {"Authorization": "Basic !!!"}, {"Authorization": "Bearer abc"},
    {"Authorization": "Basic " + "Y2xpbmljaWFu"},  # "clinician" without a colon
])
async def test_unauthenticated_callers_get_401_with_a_basic_challenge(
        ua: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await ua.post("/api/launch", headers=headers,
                             json={"patient": "p0003", "launch_url": "https://a/l"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic realm=")
    assert response.json()["error"] == "access_denied"


async def test_a_launch_for_someone_else_is_forbidden(ua: httpx.AsyncClient) -> None:
    response = await ua.post("/api/launch", headers=basic("clinician"), json={
        "user": "patient", "patient": "p0012", "launch_url": "https://a/l"})
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"


@pytest.mark.parametrize(("body", "content_type"), [
    (b"not json", "application/json"),
    (b'{"patient": "p0003", "launch_url": "https://a/l"}', "text/plain"),
    (b"[]", "application/json"),
    (b'{"patient": "p9999", "launch_url": "https://a/l"}', "application/json"),
    (b'{"patient": "p0003"}', "application/json"),
    (b'{"patient": "p0003", "client_id": "no-such-client"}', "application/json"),
    (b'{"patient": "p0003", "client_id": "smartrealm-demo-app"}', "application/json"),
    (b'{"patient": "../x", "launch_url": "https://a/l"}', "application/json"),
    (b'{"patient": "p0003", "launch_url": "https://a/l", "fhirContext": [{}]}',
     "application/json"),
    (b"\xff\xfe", "application/json"),
    (b"[" * 60000, "application/json"),
])
async def test_bad_launch_requests_are_invalid_request(
        ua: httpx.AsyncClient, body: bytes, content_type: str) -> None:
    response = await ua.post("/api/launch", content=body, headers={
        **basic("clinician"), "Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


async def test_a_patient_user_may_only_launch_their_own_record(
        ua: httpx.AsyncClient) -> None:
    response = await ua.post("/api/launch", headers=basic("patient"), json={
        "patient": "p0003", "launch_url": "https://a/l"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert (await create_launch(ua, username="patient", patient="p0012"))["launch"]


async def test_registered_launch_url_is_used_for_a_client(ua: httpx.AsyncClient,
                                                          realm: RealmConfig) -> None:
    registered = await ua.post("/register", json={
        "redirect_uris": ["http://127.0.0.1:9/cb"], "client_name": "launchable",
        "token_endpoint_auth_method": "none",
        "initiate_login_uri": "http://127.0.0.1:9/launch"}, headers=bearer(realm, EHR_LAUNCH))
    assert registered.status_code == 201, registered.text
    client = registered.json()
    assert client["initiate_login_uri"] == "http://127.0.0.1:9/launch"
    made = await create_launch(ua, client_id=client["client_id"], launch_url=None)
    assert made["url"].startswith("http://127.0.0.1:9/launch?iss=")


@pytest.mark.parametrize("uri", ["http://app.example/launch", "https://a/l#f", "/launch", 7,
                                 "javascript:alert(1)"])
async def test_bad_initiate_login_uri_is_refused(ua: httpx.AsyncClient, realm: RealmConfig,
                                                 uri: Any) -> None:
    response = await ua.post("/register", json={
        "redirect_uris": ["http://127.0.0.1:9/cb"], "client_name": "bad",
        "token_endpoint_auth_method": "none", "initiate_login_uri": uri},
        headers=bearer(realm, EHR_LAUNCH))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


async def test_style_document(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    url = style_url(realm.auth_server.issuer)
    response = await ua.get(url, headers={"Origin": "https://app.example"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.json() == SMART_STYLE


async def test_discovery_advertises_ehr_launch(ua: httpx.AsyncClient) -> None:
    doc = (await ua.get("/.well-known/smart-configuration")).json()
    assert set(doc["capabilities"]) >= EHR_CAPABILITIES
    assert len(doc["capabilities"]) == len(set(doc["capabilities"]))
    assert "launch" in doc["scopes_supported"]


async def test_every_fhir_server_advertises_ehr_launch_like_the_as(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    as_caps = set((await ua.get("/.well-known/smart-configuration")).json()["capabilities"])
    for rs in realm.resource_servers:
        caps = smart_configuration(FhirSettings(realm, rs.id))["capabilities"]
        assert set(caps) >= EHR_CAPABILITIES, rs.id
        assert len(caps) == len(set(caps)), rs.id
        assert {c for c in caps if c in EHR_CAPABILITIES} == \
            {c for c in as_caps if c in EHR_CAPABILITIES}


def test_configured_launch_urls_are_seeded_and_follow_relocation(tmp_path: Path) -> None:
    text = default_config_text().replace(
        'redirect_uris = ["http://127.0.0.1:8700/demo-app/callback"]',
        'redirect_uris = ["http://127.0.0.1:8700/demo-app/callback"]\n'
        'launch_url = "http://127.0.0.1:8700/demo-app/launch"')
    path = tmp_path / "realm.toml"
    path.write_text(text)
    realm = load_config(path).relocated({"auth_server": 18700}, tmp_path)
    assert realm.clients[0].launch_url == "http://127.0.0.1:18700/demo-app/launch"
    build_auth_server(realm)
    stores = sql_ehr_stores(make_engine(realm.database_url_for(None)))
    assert stores.app_launch_urls.all() == [
        ("smartrealm-demo-app", "http://127.0.0.1:18700/demo-app/launch")]


@pytest.mark.parametrize("value", ['"not a url"', '"https://a/l#x"', "3"])
def test_a_bad_configured_launch_url_is_a_config_error(tmp_path: Path, value: str) -> None:
    path = tmp_path / "realm.toml"
    path.write_text(default_config_text().replace(
        'client_id = "smartrealm-demo-app"',
        f'client_id = "smartrealm-demo-app"\nlaunch_url = {value}'))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == "clients[0].launch_url"
