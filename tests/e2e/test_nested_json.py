"""Absurdly nested JSON (``[[[[…``, ``{"a":{"a":…``) wherever a client can put JSON: request
bodies and the JOSE header and payload of tokens and client assertions. Python's decoder
gives up with RecursionError; every endpoint must still answer with its protocol error,
never a 500 (issue 3: "no input reaches a 500")."""

from __future__ import annotations

import base64

import httpx
import pytest

from smartrealm.oauth.assertions import ASSERTION_TYPE
from smartrealm.realm.config import RealmConfig

pytestmark = pytest.mark.e2e
DEEP_BODIES = [b"[" * 60000, b'{"a":' * 30000, b"[" * 5000 + b"]" * 5000]
JSON = {"Content-Type": "application/json"}
PASSWORD = ("clinician", "clinician-demo")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def nested_tokens() -> list[str]:
    """Compact JWS whose header, or payload, is nested 5000 levels deep."""
    deep, header = b"[" * 5000, b'{"alg":"RS256","typ":"at+jwt","kid":"k"}'
    return [f"{_b64(deep)}.{_b64(b'{}')}.c2ln", f"{_b64(header)}.{_b64(deep)}.c2ln"]


@pytest.mark.parametrize("body", DEEP_BODIES, ids=["array", "object", "balanced"])
def test_register_answers_invalid_client_metadata(live_realm: RealmConfig,
                                                  body: bytes) -> None:
    response = httpx.post(live_realm.auth_server.registration_endpoint, content=body,
                          headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_register_refuses_a_huge_body(live_realm: RealmConfig) -> None:
    body = b'{"client_name": "' + b"x" * 70000 + b'"}'
    response = httpx.post(live_realm.auth_server.registration_endpoint, content=body,
                          headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


@pytest.mark.parametrize("body", DEEP_BODIES, ids=["array", "object", "balanced"])
def test_launch_api_answers_invalid_request(live_realm: RealmConfig, body: bytes) -> None:
    response = httpx.post(live_realm.auth_server.url("/api/launch"), content=body,
                          headers=JSON, auth=PASSWORD)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("token", nested_tokens(), ids=["header", "payload"])
def test_nested_tokens_are_just_bad_tokens(live_realm: RealmConfig, token: str) -> None:
    auth = live_realm.auth_server
    fhir = httpx.get(f"{live_realm.server('ehr').base_url}/Patient",
                     headers={"Authorization": f"Bearer {token}"})
    assert fhir.status_code == 401
    assert 'error="invalid_token"' in fhir.headers["www-authenticate"]
    bearer = httpx.post(auth.introspection_endpoint, data={"token": token},
                        headers={"Authorization": f"Bearer {token}"})
    assert (bearer.status_code, bearer.json()["error"]) == (401, "invalid_token")
    revoked = httpx.post(auth.revocation_endpoint,
                         data={"token": token, "client_id": "smartrealm-demo-app"})
    assert revoked.status_code == 200  # RFC 7009 §2.2: unknown tokens are "revoked" too
    refresh = httpx.post(auth.token_endpoint, data={
        "grant_type": "refresh_token", "refresh_token": token,
        "client_id": "smartrealm-demo-app"})
    assert (refresh.status_code, refresh.json()["error"]) == (400, "invalid_grant")
    assertion = httpx.post(auth.token_endpoint, data={
        "grant_type": "client_credentials", "scope": "system/*.rs",
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": token})
    assert (assertion.status_code, assertion.json()["error"]) == (401, "invalid_client")


@pytest.mark.parametrize("body", DEEP_BODIES, ids=["array", "object", "balanced"])
def test_fhir_servers_never_500_on_nested_bodies(live_realm: RealmConfig,
                                                 body: bytes) -> None:
    base = live_realm.server("ehr").base_url
    for method, url in (("POST", f"{base}/Patient"), ("PUT", f"{base}/Patient/p0001")):
        response = httpx.request(method, url, content=body,
                                 headers={"Content-Type": "application/fhir+json"})
        assert 400 <= response.status_code < 500, response.text[:300]
        assert response.json()["resourceType"] == "OperationOutcome"
