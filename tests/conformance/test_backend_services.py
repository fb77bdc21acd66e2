"""Spec §12.1 group 3, Backend Services (``smart_backend_services``): a client registered
with its JWK Set and ``system/*.rs`` asks for a token with ``client_credentials`` and a
private_key_jwt assertion (RS384, ``iss``=``sub``=client_id, ``aud`` = token URL, exp 5
minutes ahead at most, a random ``jti``). Besides Inferno's three refusals, the assertion
failures the spec says "we should add our own cases" for; each is ``401 invalid_client``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from smartrealm.oauth.registration import BACKEND_SERVICES
from tests.conformance.checks import check_json, check_oauth_error
from tests.conformance.conftest import Realm
from tests.conformance.inferno import fhir_get
from tests.initial_tokens import bearer
from tests.oauth.assertion_keys import ClientKey, assertion_form

pytestmark = pytest.mark.e2e
SCOPE = "system/*.rs"


@dataclass(frozen=True)
class Backend:
    client_id: str
    key: ClientKey
    realm: Realm

    def assertion(self, key: ClientKey | None = None, **overrides: Any) -> str:
        return (key or self.key).assertion(self.client_id, self.realm.token_endpoint,
                                           **overrides)

    def form(self, assertion: str | None = None, **extra: str) -> dict[str, str | list[str]]:
        return assertion_form(assertion or self.assertion(),
                              **{"grant_type": "client_credentials", "scope": SCOPE, **extra})


@pytest.fixture(scope="module")
def backend(realm: Realm) -> Iterator[Backend]:
    key = ClientKey.generate("RS384")
    with httpx.Client(timeout=15.0) as http:
        response = http.post(realm.config.auth_server.registration_endpoint, json={
            "client_name": "inferno backend", "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt", "scope": SCOPE,
            "jwks": key.jwks()}, headers=bearer(realm.config, BACKEND_SERVICES))
        assert response.status_code == 201, response.text
        yield Backend(response.json()["client_id"], key, realm)


def post(http: httpx.Client, backend: Backend, form: dict[str, str | list[str]]
         ) -> httpx.Response:
    return http.post(backend.realm.token_endpoint, data=form,
                     headers={"Accept": "application/json"})


def test_smart_backend_services_invalid_grant_type(http: httpx.Client,
                                                   backend: Backend) -> None:
    """``smart_backend_services_invalid_grant_type``: "grant_type=not_a_grant_type with an
    otherwise valid assertion → 400" (``unsupported_grant_type``, RFC 6749 §5.2)."""
    response = post(http, backend, backend.form(grant_type="not_a_grant_type"))
    check_oauth_error(response, 400, "unsupported_grant_type")


def test_smart_backend_services_invalid_client_assertion(http: httpx.Client,
                                                         backend: Backend) -> None:
    """``smart_backend_services_invalid_client_assertion``:
    "client_assertion_type=not_an_assertion_type → 400 or 401" (here 401 invalid_client)."""
    response = post(http, backend, backend.form(client_assertion_type="not_an_assertion_type"))
    check_oauth_error(response, 401, "invalid_client")


Case = Callable[[Backend], str]
BAD_ASSERTIONS: dict[str, Case] = {
    "bad signature": lambda b: b.assertion(key=ClientKey.generate("RS384", b.key.kid)),
    "wrong aud": lambda b: b.assertion(aud="https://elsewhere.example.org/token"),
    "exp more than 5 minutes ahead": lambda b: b.assertion(exp=int(time.time()) + 600),
    "expired": lambda b: b.assertion(exp=int(time.time()) - 120),
    "unknown kid": lambda b: b.assertion(header={"kid": "no-such-kid"}),
    "jku not registered": lambda b: b.assertion(header={"jku": "https://evil.example/jwks"}),
    "iss differs from sub": lambda b: b.assertion(sub="someone-else"),
    "unknown client": lambda b: b.key.assertion("no-such-client", b.realm.token_endpoint),
    "alg none": lambda b: ".".join(b.assertion().split(".")[:2]) + ".",
}


@pytest.mark.parametrize("case", list(BAD_ASSERTIONS))
def test_smart_backend_services_invalid_jwt(http: httpx.Client, backend: Backend,
                                            case: str) -> None:
    """``smart_backend_services_invalid_jwt`` and the cases spec §12.1 asks us to add: "bad
    signature, wrong aud, exp > 5 min away, expired, reused jti, unknown kid, jku not
    registered, iss ≠ sub, unknown client. Each → 401 invalid_client"."""
    response = post(http, backend, backend.form(BAD_ASSERTIONS[case](backend)))
    check_oauth_error(response, 401, "invalid_client")


def test_smart_backend_services_invalid_jwt_reused_jti(http: httpx.Client,
                                                       backend: Backend) -> None:
    """``smart_backend_services_invalid_jwt``, reused ``jti``: the first use succeeds, a
    replay of the same assertion is ``401 invalid_client`` (§4.5 "jti never reused")."""
    assertion = backend.assertion()
    assert post(http, backend, backend.form(assertion)).status_code == 200
    check_oauth_error(post(http, backend, backend.form(assertion)), 401, "invalid_client")


def test_smart_backend_services_auth_request_success(http: httpx.Client,
                                                     backend: Backend) -> None:
    """``smart_backend_services_auth_request_success``: "a valid client_credentials request
    → 200 or 201"."""
    assert post(http, backend, backend.form()).status_code in (200, 201)


def test_smart_backend_services_auth_response_body(http: httpx.Client, realm: Realm,
                                                   backend: Backend) -> None:
    """``smart_backend_services_auth_response_body``: "has access_token, token_type
    (bearer), numeric expires_in and scope"; §9: expires_in SHOULD NOT exceed 300, no
    refresh token. The token reads at a server of the realm."""
    body = check_json(post(http, backend, backend.form()))
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 300
    assert body["scope"] == SCOPE and "refresh_token" not in body
    read = fhir_get(http, realm.base("lab"), "Patient/p0001", body["access_token"])
    assert read.status_code == 200, read.text
