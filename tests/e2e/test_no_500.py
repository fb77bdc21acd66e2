"""Property tests over real sockets: whatever a client sends, every endpoint answers with a
protocol error (an OAuth error code, an error page, or an OperationOutcome), never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartrealm.realm.config import RealmConfig
from tests.e2e.flow import full_flow

pytestmark = pytest.mark.e2e

OAUTH_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope", "invalid_target",
                "unsupported_response_type", "access_denied", "login_required",
                "invalid_redirect_uri", "invalid_client_metadata"}
AUTHORIZE_PARAMS = ["response_type", "client_id", "redirect_uri", "scope", "state", "aud",
                    "resource", "code_challenge", "code_challenge_method", "launch", "nonce",
                    "prompt", "x"]
TOKEN_PARAMS = ["grant_type", "code", "redirect_uri", "code_verifier", "client_id",
                "client_secret", "refresh_token", "scope", "resource", "client_assertion",
                "client_assertion_type"]
SEARCH_PARAMS = ["patient", "subject", "_id", "_count", "_offset", "identifier", "category",
                 "code", "name", "birthdate", "date", "status", "_sort", "name:exact",
                 "_lastUpdated", "x"]
TYPES = ["Patient", "Observation", "Condition", "Encounter", "ImagingStudy",
         "DiagnosticReport", "Practitioner", "Nope", "metadata", "_search", "Patient/p0001"]

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
values = st.one_of(texts, st.sampled_from(["S256", "plain", "code", "authorization_code",
                                           "refresh_token", "openid launch/patient",
                                           "patient/*.rs", "http://127.0.0.1:1/fhir",
                                           "Patient/p0012", "a|b", "ge2024-01-01", "-1",
                                           "99999999999999999999"]))


def params_from(names: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    return st.lists(st.tuples(st.sampled_from(names), values), max_size=8)


def _post_form(client: httpx.Client, url: str, params: list[tuple[str, str]]) -> httpx.Response:
    return client.post(url, content=urlencode(params),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15.0) as c:
        yield c


@pytest.fixture(scope="module")
def patient_token(live_realm: RealmConfig) -> str:
    async def flow() -> str:
        async with httpx.AsyncClient(timeout=15.0) as http:
            ehr, imaging = (live_realm.server(s).base_url for s in ("ehr", "imaging"))
            return (await full_flow(http, live_realm, resources=[ehr, imaging])).access_token
    return asyncio.run(flow())


FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(params=params_from(AUTHORIZE_PARAMS), post=st.booleans())
def test_authorize_never_500(live_realm: RealmConfig, client: httpx.Client,
                             params: list[tuple[str, str]], post: bool) -> None:
    url = live_realm.auth_server.authorization_endpoint
    response = _post_form(client, url, params) if post else client.get(url, params=params)
    assert response.status_code < 500, response.text[:500]
    if response.status_code in (302, 303):
        location = response.headers["location"]
        # Only registered redirect URIs (or our own pages) are ever redirected to.
        assert location.startswith(("/", live_realm.auth_server.issuer)), location


@FUZZ
@given(params=params_from(TOKEN_PARAMS))
def test_token_never_500(live_realm: RealmConfig, client: httpx.Client,
                         params: list[tuple[str, str]]) -> None:
    response = _post_form(client, live_realm.auth_server.token_endpoint, params)
    assert response.status_code in (400, 401), response.text[:500]
    assert response.json()["error"] in OAUTH_ERRORS
    assert "no-store" in response.headers["cache-control"]


@FUZZ
@given(body=st.dictionaries(st.sampled_from(["redirect_uris", "client_name", "scope",
                                              "token_endpoint_auth_method", "grant_types",
                                              "jwks", "x"]),
                            st.one_of(values, st.lists(values, max_size=3), st.integers(),
                                      st.none())))
def test_register_never_500(live_realm: RealmConfig, client: httpx.Client,
                            body: dict[str, object]) -> None:
    response = client.post(live_realm.auth_server.registration_endpoint, json=body)
    assert response.status_code in (201, 400), response.text[:500]
    if response.status_code == 400:
        assert response.json()["error"] in OAUTH_ERRORS


@FUZZ
@given(path=st.sampled_from(TYPES), params=params_from(SEARCH_PARAMS),
       server=st.sampled_from(["ehr", "imaging"]), strict=st.booleans())
def test_fhir_search_never_500(live_realm: RealmConfig, client: httpx.Client,
                               patient_token: str, path: str, params: list[tuple[str, str]],
                               server: str, strict: bool) -> None:
    headers = {"Authorization": f"Bearer {patient_token}"}
    if strict:
        headers["Prefer"] = "handling=strict"
    response = client.get(f"{live_realm.server(server).base_url}/{path}", params=params,
                          headers=headers)
    assert response.status_code in (200, 400, 401, 403, 404, 405), response.text[:500]
    if response.status_code != 200:
        assert response.json()["resourceType"] == "OperationOutcome"
