"""Bad authorization requests: never a code; an error page when the redirect URI cannot be
trusted, otherwise an error redirect carrying state (RFC 6749 §4.1.2.1, SMART §3)."""

from __future__ import annotations

import httpx
import pytest

from smartrealm.realm.config import RealmConfig
from tests.authz.conftest import Flow, redirect_params


async def _authorize(ua: httpx.AsyncClient, flow: Flow, **overrides: str | list[str] | None
                     ) -> httpx.Response:
    return await ua.get("/authorize", params=flow.params(**overrides))


async def test_unknown_client_gets_an_error_page_not_a_redirect(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    response = await _authorize(ua, Flow(realm), client_id="nobody")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "unknown client_id" in response.text
    assert response.headers["x-frame-options"] == "DENY"


async def test_missing_client_id_gets_an_error_page(ua: httpx.AsyncClient,
                                                     realm: RealmConfig) -> None:
    response = await _authorize(ua, Flow(realm), client_id=None)
    assert response.status_code == 400 and "location" not in response.headers


@pytest.mark.parametrize("redirect_uri", ["https://evil.example/cb", None,
                                          "http://127.0.0.1:8700/demo-app/callback/"])
async def test_unregistered_redirect_uri_is_never_followed(
        ua: httpx.AsyncClient, realm: RealmConfig, redirect_uri: str | None) -> None:
    response = await _authorize(ua, Flow(realm), redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "redirect_uri" in response.text


async def test_missing_state_is_invalid_request(ua: httpx.AsyncClient,
                                                realm: RealmConfig) -> None:
    params = redirect_params(await _authorize(ua, Flow(realm), state=None))
    assert params["error"] == "invalid_request" and "state" not in params
    assert "code" not in params
    assert params["iss"] == realm.auth_server.issuer


@pytest.mark.parametrize(("overrides", "error"), [
    ({"code_challenge": None}, "invalid_request"),
    ({"code_challenge_method": None}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": "too-short"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": None}, "invalid_request"),
    ({"scope": None}, "invalid_request"),
    ({"scope": "patient/Observation.dr"}, "invalid_scope"),
    ({"scope": ["openid", "launch"]}, "invalid_request"),
    ({"prompt": "none"}, "login_required"),
    ({"launch": "xyz"}, "invalid_request"),
])
async def test_bad_parameters_redirect_with_error_and_state(
        ua: httpx.AsyncClient, realm: RealmConfig, overrides: dict[str, str | None],
        error: str) -> None:
    flow = Flow(realm)
    params = redirect_params(await _authorize(ua, flow, **overrides))
    assert params["error"] == error
    assert params["state"] == flow.state
    assert "code" not in params


@pytest.mark.parametrize("resource", [
    "https://inferno.healthit.gov/invalid_aud",  # not governed by this AS
    "fhir/relative",  # not absolute
    "http://127.0.0.1:8701/fhir#frag",  # fragment
])
async def test_bad_resource_is_invalid_target(ua: httpx.AsyncClient, realm: RealmConfig,
                                              resource: str) -> None:
    flow = Flow(realm)
    params = redirect_params(await _authorize(
        ua, flow, resource=[realm.server("ehr").base_url, resource]))
    assert params["error"] == "invalid_target"
    assert params["state"] == flow.state and "code" not in params


async def test_two_aud_is_invalid_request(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    ehr, img = realm.server("ehr").base_url, realm.server("imaging").base_url
    params = redirect_params(await _authorize(ua, Flow(realm), resource=None, aud=[ehr, img]))
    assert params["error"] == "invalid_request"


async def test_aud_outside_resources_is_invalid_request(ua: httpx.AsyncClient,
                                                        realm: RealmConfig) -> None:
    flow = Flow(realm, resources=("ehr", "imaging"))
    params = redirect_params(await _authorize(ua, flow, aud=realm.server("lab").base_url))
    assert params["error"] == "invalid_request"


async def test_unknown_aud_is_invalid_request(ua: httpx.AsyncClient,
                                              realm: RealmConfig) -> None:
    params = redirect_params(await _authorize(
        ua, Flow(realm), resource=None, aud="https://inferno.healthit.gov/invalid_aud"))
    assert params["error"] == "invalid_request"


async def test_no_aud_and_no_resource_is_invalid_request(ua: httpx.AsyncClient,
                                                         realm: RealmConfig) -> None:
    params = redirect_params(await _authorize(ua, Flow(realm), resource=None))
    assert params["error"] == "invalid_request"


async def test_aud_inside_resources_becomes_primary(ua: httpx.AsyncClient,
                                                    realm: RealmConfig) -> None:
    flow = Flow(realm, resources=("ehr", "imaging"))
    response = await _authorize(ua, flow, aud=realm.server("imaging").base_url)
    assert response.status_code == 303
    assert response.headers["location"] == "/interaction/login"


async def test_post_authorize_is_supported(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    response = await ua.post("/authorize", data=Flow(realm).params())
    assert response.status_code == 303
    assert response.headers["location"] == "/interaction/login"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/interaction" in cookie
