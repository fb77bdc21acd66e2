"""Spec §12.1, discovery (``smart_discovery_stu2_2``), run against every FHIR server of the
realm (each one is a FHIR URL Inferno could be given), plus the capability sets the g10
scenarios require (§1.2)."""

from __future__ import annotations

import httpx
import pytest

from tests.conformance.checks import check_cors, check_json
from tests.conformance.conftest import Realm
from tests.conformance.inferno import ORIGIN

pytestmark = pytest.mark.e2e
SERVERS = ("ehr", "imaging", "lab", "archive")


@pytest.fixture(params=SERVERS)
def fhir_url(request: pytest.FixtureRequest, realm: Realm) -> str:
    return realm.base(str(request.param))


def well_known(http: httpx.Client, fhir_url: str, **headers: str) -> httpx.Response:
    return http.get(f"{fhir_url}/.well-known/smart-configuration",
                    headers={"Accept": "application/json", **headers})


def test_well_known_endpoint(http: httpx.Client, fhir_url: str) -> None:
    """``well_known_endpoint``: "GET {fhir}/.well-known/smart-configuration with Accept:
    application/json → 200, valid JSON, Content-Type starts with application/json"; every
    endpoint URL absolute (§1.1)."""
    config = check_json(well_known(http, fhir_url))
    for name, value in config.items():
        if name.endswith("_endpoint") or name in ("jwks_uri", "issuer"):
            assert isinstance(value, str) and value.startswith("http"), (name, value)


def test_well_known_capabilities_stu2(http: httpx.Client, fhir_url: str) -> None:
    """``well_known_capabilities_stu2``: "authorization_endpoint, token_endpoint,
    capabilities, grant_types_supported and code_challenge_methods_supported are present and
    non-blank; grant types include authorization_code; methods include S256 and exclude
    plain; if sso-openid-connect, issuer and jwks_uri are strings; every capability is a
    string"."""
    config = check_json(well_known(http, fhir_url))
    for name in ("authorization_endpoint", "token_endpoint"):
        assert isinstance(config[name], str) and config[name].strip()
    for name in ("capabilities", "grant_types_supported", "code_challenge_methods_supported"):
        assert isinstance(config[name], list) and config[name], name
    assert "authorization_code" in config["grant_types_supported"]
    assert "S256" in config["code_challenge_methods_supported"]
    assert "plain" not in config["code_challenge_methods_supported"]
    assert all(isinstance(c, str) for c in config["capabilities"])
    assert "sso-openid-connect" in config["capabilities"]
    assert isinstance(config["issuer"], str) and isinstance(config["jwks_uri"], str)


def test_smart_cors_well_known_endpoint(http: httpx.Client, fhir_url: str) -> None:
    """``smart_cors_well_known_endpoint``: "smart-configuration GET with Origin →
    Access-Control-Allow-Origin equals the origin or *"."""
    response = well_known(http, fhir_url, Origin=ORIGIN)
    assert response.status_code == 200
    check_cors(response)


def test_smart_cors_metadata_request(http: httpx.Client, fhir_url: str) -> None:
    """``smart_cors_metadata_request``: "GET /metadata with Origin → 200 plus the same ACAO
    check"."""
    response = http.get(f"{fhir_url}/metadata", headers={
        "Accept": "application/fhir+json", "Origin": ORIGIN})
    assert response.status_code == 200
    assert response.json()["resourceType"] == "CapabilityStatement"
    check_cors(response)


G10_STANDALONE_PATIENT = {
    "launch-standalone", "client-public", "client-confidential-symmetric",
    "client-confidential-asymmetric", "sso-openid-connect", "context-standalone-patient",
    "permission-offline", "permission-patient", "authorize-post", "permission-v2",
    "permission-v1"}
G10_EHR_PRACTITIONER = {
    "launch-ehr", "client-confidential-symmetric", "client-confidential-asymmetric",
    "sso-openid-connect", "context-banner", "context-style", "context-ehr-patient",
    "permission-offline", "permission-user", "authorize-post", "permission-v2",
    "permission-v1", "context-ehr-encounter"}


@pytest.mark.parametrize("scenario", ["standalone patient app", "EHR practitioner app"])
def test_g10_required_capabilities(http: httpx.Client, fhir_url: str, scenario: str) -> None:
    """g10 "required-capabilities checks per scenario" (§1.2): the SMART 2.2 capability set
    of the standalone patient app and of the EHR practitioner app (with
    context-ehr-encounter, as for US Core 5 or later)."""
    wanted = G10_STANDALONE_PATIENT if scenario.startswith("standalone") else \
        G10_EHR_PRACTITIONER
    capabilities = set(check_json(well_known(http, fhir_url))["capabilities"])
    assert wanted <= capabilities, wanted - capabilities
