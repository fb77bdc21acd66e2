"""Spec §12.1 group 1.3 (and its repetition in group 2), OpenID Connect
(``smart_openid_connect_stu2_2``), verified the way Inferno does it (spec §8): the id_token
from a standalone launch (patient user) and from an EHR launch (clinician); discovery at
``{id_token.iss}/.well-known/openid-configuration``; the JWKS; the RS256 signature with the
key named by ``kid``; the claims; and a read of ``fhirUser`` with the access token.

The realm's signing key was rotated at start-up (conftest.py), so the JWKS holds two RSA
keys: Inferno then requires ``kid`` and that it match."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from smartrealm.oauth.key_rotation import PREPUBLISH
from tests.conformance.checks import check_cors, check_json
from tests.conformance.conftest import Realm, wait_for_two_keys
from tests.conformance.inferno import (
    ORIGIN,
    STANDALONE_SCOPES,
    AuthRequest,
    Launched,
    ehr_launch,
    fhir_get,
    jwt_part,
    launch,
    register,
    standalone,
)

pytestmark = pytest.mark.e2e
FHIR_USER_TYPES = ("Patient", "Practitioner", "RelatedPerson", "Person")
REQUIRED_CONFIGURATION = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
                          "response_types_supported", "subject_types_supported",
                          "id_token_signing_alg_values_supported")


@pytest.fixture(scope="module", params=["standalone", "ehr"])
def launched(request: pytest.FixtureRequest, realm: Realm) -> Iterator[Launched]:
    wait_for_two_keys(realm)
    with httpx.Client(timeout=15.0) as http:
        if request.param == "standalone":
            yield standalone(http, realm)
        else:
            yield ehr_launch(http, realm, patient="p0003")


def id_token(launched: Launched) -> str:
    assert launched.response.status_code == 200, launched.response.text
    return str(launched.body["id_token"])


def configuration(http: httpx.Client, launched: Launched) -> dict[str, Any]:
    iss = jwt_part(id_token(launched), 1)["iss"]
    return check_json(http.get(f"{iss}/.well-known/openid-configuration",
                               headers={"Accept": "application/json"}))


def rsa_keys(http: httpx.Client, launched: Launched) -> list[dict[str, Any]]:
    jwks = check_json(http.get(configuration(http, launched)["jwks_uri"]))
    return [k for k in jwks["keys"] if k.get("kty") == "RSA"]


def verified_claims(http: httpx.Client, launched: Launched) -> dict[str, Any]:
    """The RS256 signature checked with the RSA key the header's ``kid`` names."""
    token = id_token(launched)
    kid = jwt_part(token, 0)["kid"]
    jwk = next(k for k in rsa_keys(http, launched) if k["kid"] == kid)
    decoded = jwt.decode(token, RSAKey.import_key(jwk), algorithms=["RS256"])
    return dict(decoded.claims)


def test_smart_openid_decode_id_token(launched: Launched) -> None:
    """``smart_openid_decode_id_token``: "the id_token is a well-formed JWT"."""
    token = id_token(launched)
    assert token.count(".") == 2
    assert isinstance(jwt_part(token, 0), dict) and isinstance(jwt_part(token, 1), dict)


def test_smart_openid_retrieve_configuration(http: httpx.Client, launched: Launched) -> None:
    """``smart_openid_retrieve_configuration``: "GET {id_token.iss}/.well-known/
    openid-configuration → 200, application/json, valid JSON"."""
    assert configuration(http, launched)


def test_smart_openid_required_configuration_fields(http: httpx.Client,
                                                    launched: Launched) -> None:
    """``smart_openid_required_configuration_fields``: "has issuer, authorization_endpoint,
    token_endpoint, jwks_uri, response_types_supported, subject_types_supported and
    id_token_signing_alg_values_supported (which ⊇ RS256)"."""
    config = configuration(http, launched)
    for name in REQUIRED_CONFIGURATION:
        assert config.get(name), name
    assert "RS256" in config["id_token_signing_alg_values_supported"]


def test_smart_openid_retrieve_jwks(http: httpx.Client, launched: Launched) -> None:
    """``smart_openid_retrieve_jwks``: "the jwks_uri returns 200 JSON with a keys array, at
    least one RSA key, and every RSA key importable"."""
    keys = rsa_keys(http, launched)
    assert keys
    for key in keys:
        assert RSAKey.import_key(key).as_dict(private=False)["n"] == key["n"]


def test_smart_openid_token_header(http: httpx.Client, launched: Launched) -> None:
    """``smart_openid_token_header``: "alg is RS256. With more than one RSA key, kid is
    required and must match; with one key, kid is absent or matches". After the rotation the
    JWKS has two RSA keys, so the strict branch applies."""
    header = jwt_part(id_token(launched), 0)
    assert header["alg"] == "RS256"
    kids = [k["kid"] for k in rsa_keys(http, launched)]
    assert len(kids) >= 2
    assert header["kid"] in kids


def test_smart_openid_token_payload(http: httpx.Client, realm: Realm,
                                    launched: Launched) -> None:
    """``smart_openid_token_payload``: "RS256 signature is valid; iss equals the discovery
    issuer; aud equals client_id; not expired (60 s leeway); iss, sub, aud, exp and iat are
    present; sub is non-blank and ≤255 characters"."""
    claims = verified_claims(http, launched)
    for name in ("iss", "sub", "aud", "exp", "iat"):
        assert name in claims, name
    assert claims["iss"] == configuration(http, launched)["issuer"] == realm.issuer
    assert claims["aud"] in (launched.client.client_id, [launched.client.client_id])
    assert claims["exp"] > time.time() - 60
    assert isinstance(claims["sub"], str) and claims["sub"].strip()
    assert len(claims["sub"]) <= 255 and claims["sub"].isascii()


def fhir_user_read(http: httpx.Client, realm: Realm, launched: Launched,
                   origin: str | None = None) -> tuple[str, httpx.Response]:
    """Inferno reads ``{fhir url}/{Type}/{id}`` from the claim's last two segments; the
    claim is absolute on the EHR, so that is the claim's own URL."""
    fhir_user = str(verified_claims(http, launched)["fhirUser"])
    resource_type, resource_id = fhir_user.rstrip("/").split("/")[-2:]
    assert fhir_user == f"{realm.base('ehr')}/{resource_type}/{resource_id}"
    response = fhir_get(http, realm.base("ehr"), f"{resource_type}/{resource_id}",
                        launched.access_token, origin)
    return resource_type, response


def test_smart_openid_fhir_user_claim(http: httpx.Client, realm: Realm,
                                      launched: Launched) -> None:
    """``smart_openid_fhir_user_claim``: "if fhirUser was requested, the claim is present,
    its type is Patient, Practitioner, RelatedPerson or Person, and a FHIR read of it with
    the access token → 200 with the right resourceType". The claim is an absolute URL on the
    user's home server (design: no relative fhirUser when there may be several audiences)."""
    resource_type, response = fhir_user_read(http, realm, launched)
    assert resource_type in FHIR_USER_TYPES
    assert response.status_code == 200, response.text
    assert response.json()["resourceType"] == resource_type
    standalone_launch = "launch/patient" in launched.request.scope.split()
    assert resource_type == ("Patient" if standalone_launch else "Practitioner")


def test_smart_cors_openid_fhir_user_claim(http: httpx.Client, realm: Realm,
                                           launched: Launched) -> None:
    """``smart_cors_openid_fhir_user_claim``: "that read with Origin returns ACAO"."""
    _, response = fhir_user_read(http, realm, launched, origin=ORIGIN)
    assert response.status_code == 200, response.text
    check_cors(response)


def test_smart_openid_token_header_after_rotation(http: httpx.Client, realm: Realm) -> None:
    """``smart_openid_token_header`` once the rotated key signs (PREPUBLISH seconds after
    `keys rotate`): the new id_token names the new ``kid``, verifies with it, and the old key
    is still published beside it."""
    time.sleep(max(0.0, realm.rotated_at + PREPUBLISH + 2 - time.time()))
    fresh = standalone(http, realm)
    assert jwt_part(id_token(fresh), 0)["kid"] == realm.new_kid
    assert len(rsa_keys(http, fresh)) >= 2
    assert verified_claims(http, fresh)["fhirUser"]


def test_openid_nonce_is_echoed(http: httpx.Client, realm: Realm) -> None:
    """Spec §8: "nonce is required if the request carried one" (OIDC Core §3.1.3.7). Inferno
    sends none; an app that does gets it back in the id_token."""
    request = AuthRequest(register(http, realm), STANDALONE_SCOPES, aud=realm.base("ehr"),
                          extra=(("nonce", "n-0S6_WzA2Mj"),))
    assert verified_claims(http, launch(http, realm, request))["nonce"] == "n-0S6_WzA2Mj"
