"""Spec §12.1 group 4, Token Introspection (``smart_token_introspection_stu2_2``): request
a new access token (a standalone launch, and an EHR launch so that ``encounter`` is in
context too), then Inferno's two requests (an active token, ``token=invalid_token_value``)
and its validation of both answers.

Inferno sends no credentials unless "custom authorization headers" are configured. This AS
protects the endpoint (RFC 7662 §2.1 MUST; spec §14.8): the configured header is a FHIR
server's own client (``rs:ehr``, HTTP Basic), or — SMART §7.1 — the app's Bearer token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conformance.checks import check_json, check_oauth_error
from tests.conformance.conftest import Realm
from tests.conformance.inferno import (
    Launched,
    bearer,
    ehr_launch,
    introspect,
    jwt_part,
    standalone,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["standalone", "ehr"])
def launched(request: pytest.FixtureRequest, realm: Realm) -> Iterator[Launched]:
    """``smart_token_introspection_access_token_group_stu2_2``: a new, active token."""
    with httpx.Client(timeout=15.0) as http:
        launched = (standalone(http, realm) if request.param == "standalone"
                    else ehr_launch(http, realm, encounter="enc-p0003-1"))
        assert launched.response.status_code == 200, launched.response.text
        yield launched


def active_answer(http: httpx.Client, realm: Realm, launched: Launched) -> dict[str, Any]:
    return check_json(introspect(http, realm, launched.access_token))


def test_smart_token_introspection_request_group_active_token(
        http: httpx.Client, realm: Realm, launched: Launched) -> None:
    """``smart_token_introspection_request_group`` test 1: "POST to introspection_endpoint
    (taken from smart-configuration) with form token=<active token>, Accept:
    application/json, and optional custom auth headers → 200" and valid JSON."""
    config = http.get(f"{realm.base('ehr')}/.well-known/smart-configuration").json()
    assert config["introspection_endpoint"] == realm.config.auth_server.introspection_endpoint
    assert active_answer(http, realm, launched)


def test_smart_token_introspection_request_group_invalid_token(
        http: httpx.Client, realm: Realm) -> None:
    """``smart_token_introspection_request_group`` test 2: "token=invalid_token_value →
    200"."""
    check_json(introspect(http, realm, "invalid_token_value"))


def test_smart_token_introspection_response_group_active_token(
        http: httpx.Client, realm: Realm, launched: Launched) -> None:
    """``smart_token_introspection_response_group`` test 1: "active === true; client_id
    matches; scope has the same set as the token response; exp is present and ≥ now−600;
    patient and encounter equal the token response values when those were present; with an
    id_token, iss and sub equal the id_token's, and fhirUser should match"."""
    answer = active_answer(http, realm, launched)
    body = launched.body
    assert answer["active"] is True
    assert answer["client_id"] == launched.client.client_id
    assert sorted(answer["scope"].split()) == sorted(body["scope"].split())
    assert isinstance(answer["exp"], int) and answer["exp"] >= time.time() - 600
    for name in ("patient", "encounter"):
        if name in body:
            assert answer[name] == body[name], name
    id_claims = jwt_part(body["id_token"], 1)
    assert answer["iss"] == id_claims["iss"] and answer["sub"] == id_claims["sub"]
    assert answer["fhirUser"] == id_claims["fhirUser"]
    # §7.1: every launch-context parameter of the token response is repeated.
    for name in ("need_patient_banner", "smart_style_url", "fhirContext"):
        if name in body:
            assert answer[name] == body[name], name


def test_smart_token_introspection_response_group_invalid_token(
        http: httpx.Client, realm: Realm) -> None:
    """``smart_token_introspection_response_group`` test 2: "active === false; a warning if
    any other member is present" — here exactly ``{"active": false}``."""
    assert check_json(introspect(http, realm, "invalid_token_value")) == {"active": False}


def test_introspection_with_the_apps_bearer_token(http: httpx.Client, realm: Realm,
                                                  launched: Launched) -> None:
    """SMART §7.1: "any authorized caller SHALL be able to authenticate with an
    appropriately scoped SMART App or Backend Services Bearer token" and may introspect
    tokens issued to any client."""
    endpoint = realm.config.auth_server.introspection_endpoint
    answer = check_json(http.post(endpoint, data={"token": launched.access_token},
                                  headers=bearer(launched.access_token)))
    assert answer["active"] is True and answer["client_id"] == launched.client.client_id
    other = standalone(http, realm)
    about_other = check_json(http.post(endpoint, data={"token": other.access_token},
                                       headers=bearer(launched.access_token)))
    assert about_other["client_id"] == other.client.client_id


def test_introspection_requires_authentication(http: httpx.Client, realm: Realm,
                                               launched: Launched) -> None:
    """The decision of spec §14.8: without credentials (Inferno's default request) the
    answer is ``401 invalid_client``; an inactive Bearer token is ``401 invalid_token``."""
    endpoint = realm.config.auth_server.introspection_endpoint
    check_oauth_error(http.post(endpoint, data={"token": launched.access_token}),
                      401, "invalid_client")
    check_oauth_error(http.post(endpoint, data={"token": launched.access_token},
                                headers=bearer("invalid_token_value")), 401, "invalid_token")
