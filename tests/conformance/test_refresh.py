"""Spec §12.1 groups 1.4 and 1.5 (and their repetition after the EHR launch): token refresh
without scopes (``smart_token_refresh_stu2``) and with the exact previously granted scope
string, in Inferno's order — the second refresh uses the refresh token the first one
returned (rotation) — for a standalone launch (symmetric client: HTTP Basic) and an EHR
launch (public client). Then the g10 reads after refresh and the narrowing rule (§4.3)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conformance.checks import check_no_store, check_oauth_error, check_token_response_body
from tests.conformance.conftest import Realm
from tests.conformance.inferno import (
    Launched,
    ehr_launch,
    fhir_get,
    refresh_form,
    standalone,
    token_request,
)

pytestmark = pytest.mark.e2e


@dataclass
class Refreshed:
    launched: Launched
    without_scope: httpx.Response
    with_scope: httpx.Response


@pytest.fixture(scope="module", params=["standalone", "ehr"])
def refreshed(request: pytest.FixtureRequest, realm: Realm) -> Iterator[Refreshed]:
    with httpx.Client(timeout=15.0) as http:
        launched = (standalone(http, realm, "symmetric") if request.param == "standalone"
                    else ehr_launch(http, realm, encounter="enc-p0003-1"))
        assert launched.response.status_code == 200, launched.response.text
        first = token_request(http, realm, launched.client,
                              refresh_form(launched.body["refresh_token"]))
        assert first.status_code == 200, first.text
        second = token_request(http, realm, launched.client, refresh_form(
            first.json()["refresh_token"], scope=first.json()["scope"]))
        yield Refreshed(launched, first, second)


def check_refresh_body(response: httpx.Response, previous_scope: str) -> None:
    """``smart_token_refresh_body``: "has access_token, token_type, expires_in and scope;
    types are correct; token_type is bearer; new scopes ⊆ previous scopes"."""
    body = response.json()
    check_token_response_body(body, requested_scope="")
    assert set(body["scope"].split()) <= set(previous_scope.split())


def test_smart_token_refresh_stu2(refreshed: Refreshed) -> None:
    """``smart_token_refresh_stu2``: "POST grant_type=refresh_token and refresh_token, with no
    scope, plus client auth → 200 JSON. A rotated refresh token is captured"."""
    response = refreshed.without_scope
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["refresh_token"] != refreshed.launched.body["refresh_token"]


def test_smart_token_refresh_body(refreshed: Refreshed) -> None:
    """``smart_token_refresh_body`` after a refresh without scope: the same scopes as the
    original grant (§4.3: "if absent, it means the same scopes")."""
    check_refresh_body(refreshed.without_scope, refreshed.launched.body["scope"])
    assert refreshed.without_scope.json()["scope"] == refreshed.launched.body["scope"]


def test_smart_token_response_headers_on_refresh(refreshed: Refreshed) -> None:
    """``smart_token_response_headers`` (refresh request): "no-store and no-cache"."""
    check_no_store(refreshed.without_scope)


def test_smart_token_refresh_stu2_with_scopes(refreshed: Refreshed) -> None:
    """Group 1.5, ``smart_token_refresh_stu2`` with ``scope=<exact previously granted
    scopes>``: "must succeed" (§4.3, §14.13: subset-or-equal)."""
    assert refreshed.with_scope.status_code == 200, refreshed.with_scope.text


def test_smart_token_refresh_body_with_scopes(refreshed: Refreshed) -> None:
    """Group 1.5, ``smart_token_refresh_body``: new scopes ⊆ previous scopes (here equal)."""
    previous = refreshed.without_scope.json()["scope"]
    check_refresh_body(refreshed.with_scope, previous)
    assert set(refreshed.with_scope.json()["scope"].split()) == set(previous.split())


def test_smart_token_response_headers_on_refresh_with_scopes(refreshed: Refreshed) -> None:
    """Group 1.5, ``smart_token_response_headers``: no-store and no-cache."""
    check_no_store(refreshed.with_scope)


def test_g10_patient_context_after_refresh(http: httpx.Client, realm: Realm,
                                           refreshed: Refreshed) -> None:
    """``g10_patient_context``, "repeated after refresh": GET Patient/{patient} with the
    refreshed token → 200 Patient. The launch context is repeated in every refresh
    response (§4.3 "MAY be repeated"), EHR launch context included (§4.4)."""
    for response in (refreshed.without_scope, refreshed.with_scope):
        body = response.json()
        assert body["patient"] == refreshed.launched.body["patient"]
        read = fhir_get(http, realm.base("ehr"), f"Patient/{body['patient']}",
                        body["access_token"])
        assert read.status_code == 200 and read.json()["resourceType"] == "Patient"
        if "encounter" in refreshed.launched.body:
            assert body["encounter"] == refreshed.launched.body["encounter"]
            assert body["need_patient_banner"] is True


def test_refresh_narrows_scope_and_never_widens(http: httpx.Client, realm: Realm) -> None:
    """§4.3: a refresh ``scope`` "must be a strict sub-set of the originally granted
    scopes (no new permissions)": a narrower one is granted exactly, a wider one is
    ``invalid_scope`` (400)."""
    launched = standalone(http, realm, "public", scope="launch/patient offline_access "
                          "patient/Patient.rs patient/Observation.rs")
    narrowed = token_request(http, realm, launched.client, refresh_form(
        launched.body["refresh_token"], scope="launch/patient patient/Patient.rs"))
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "launch/patient patient/Patient.rs"
    token = narrowed.json()["access_token"]
    ehr = realm.base("ehr")
    assert fhir_get(http, ehr, "Patient/p0012", token).status_code == 200
    assert fhir_get(http, ehr, "Observation", token, patient="p0012").status_code == 403
    widened = token_request(http, realm, launched.client, refresh_form(
        narrowed.json()["refresh_token"], scope="patient/Patient.rs patient/Condition.rs"))
    check_oauth_error(widened, 400, "invalid_scope")
