"""Spec §12.1 group 1.2, Standalone Launch (``smart_standalone_launch_stu2_2``), with
Inferno's default scopes ``launch/patient openid fhirUser offline_access patient/*.rs``
against the EHR, for each client type Inferno supports: public, symmetric
(client_secret_basic) and asymmetric (private_key_jwt, RS384). The patient user signs in."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conformance.checks import check_cors, check_no_store, check_token_response_body
from tests.conformance.conftest import Realm
from tests.conformance.inferno import (
    KINDS,
    REDIRECT_URI,
    STANDALONE_SCOPES,
    AuthRequest,
    Launched,
    authorize,
    fhir_get,
    register,
    standalone,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=KINDS)
def launched(request: pytest.FixtureRequest, realm: Realm) -> Iterator[Launched]:
    """One standalone launch per client type, shared by the checks of the group (Inferno
    runs them in sequence on one launch)."""
    with httpx.Client(timeout=15.0) as http:
        yield standalone(http, realm, str(request.param))


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_smart_app_redirect_stu2(http: httpx.Client, realm: Realm, method: str) -> None:
    """``smart_app_redirect_stu2``: "the browser goes to authorize with response_type=code,
    client_id, redirect_uri, scope, state=<uuid>, aud=<fhir url>, code_challenge and
    code_challenge_method=S256, by GET or by auto-posted form. The test waits for the
    redirect carrying the same state" (and ``iss``, RFC 9207, which the AS advertises)."""
    request = AuthRequest(register(http, realm), STANDALONE_SCOPES, aud=realm.base("ehr"))
    visit = authorize(realm, request, method=method)
    assert visit.callback.startswith(REDIRECT_URI + "?")
    assert visit.params["state"] == request.state
    assert visit.params["iss"] == realm.issuer


def test_smart_code_received(launched: Launched) -> None:
    """``smart_code_received``: "the redirect has code and no error"."""
    params = launched.visit.params
    assert params.get("code") and "error" not in params
    assert params["state"] == launched.request.state


def test_smart_token_exchange_stu2_2(launched: Launched) -> None:
    """``smart_token_exchange_stu2_2``: "POST form grant_type=authorization_code, code,
    redirect_uri, code_verifier, with auth by type (public: client_id in the body and an
    Origin header; symmetric: Basic; asymmetric: client_assertion RS384) → 200 and valid
    JSON"."""
    assert launched.response.status_code == 200, launched.response.text
    assert launched.response.headers["content-type"].startswith("application/json")
    assert isinstance(launched.response.json(), dict)


def test_smart_token_response_body_stu2_2(launched: Launched) -> None:
    """``smart_token_response_body_stu2_2``: "access_token, token_type, expires_in and scope
    are present; access_token, token_type, scope and refresh_token are strings and
    expires_in is numeric; token_type is bearer (case-insensitive); warning if a requested
    scope is missing; fhirContext follows the 2.2 object rules (relative reference only)".

    A single-server standalone launch follows SMART 2.2 exactly: ``patient`` is the plain
    id and no absolute-reference fhirContext appears. (Multi-server tokens whose patient ids
    differ carry the seed's ``launch-full-url`` items with *absolute* references on purpose,
    spec §6.5/§14.2; see test_multi_server.py.)"""
    body = launched.body
    check_token_response_body(body, STANDALONE_SCOPES)
    assert body["patient"] == "p0012"  # the patient user's own record on the EHR
    assert "fhirContext" not in body
    assert body["refresh_token"] and body["id_token"]


def test_smart_token_response_headers(launched: Launched) -> None:
    """``smart_token_response_headers``: "Cache-Control contains no-store and Pragma
    contains no-cache"."""
    check_no_store(launched.response)


@pytest.mark.parametrize("launched", ["public"], indirect=True)
def test_smart_cors_token_exchange(launched: Launched) -> None:
    """``smart_cors_token_exchange`` (public clients only): "the token response has
    Access-Control-Allow-Origin equal to the origin or *"."""
    check_cors(launched.response)


def test_g10_patient_context(http: httpx.Client, realm: Realm, launched: Launched) -> None:
    """``g10_patient_context``: "GET Patient/{patient} with the token → 200 Patient"."""
    response = fhir_get(http, realm.base("ehr"), f"Patient/{launched.body['patient']}",
                        launched.access_token)
    assert response.status_code == 200, response.text
    assert response.json()["resourceType"] == "Patient"
    assert response.json()["id"] == launched.body["patient"]
