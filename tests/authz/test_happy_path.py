"""The full standalone flow against the real AS app: two resources, one token."""

from __future__ import annotations

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from smartrealm.realm.config import RealmConfig
from tests.authz.conftest import Flow, authorize_code, exchange


async def _jwks(ua: httpx.AsyncClient) -> KeySet:
    return KeySet.import_key_set((await ua.get("/jwks")).json())


async def test_patient_user_two_servers_gets_one_multi_audience_token(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm, resources=("ehr", "imaging"),
                scope="launch/patient openid fhirUser patient/Patient.rs "
                      "patient/Observation.rs patient/ImagingStudy.rs")
    code = await authorize_code(ua, flow)
    response = await exchange(ua, flow, code, **{})
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    ehr, img = realm.server("ehr").base_url, realm.server("imaging").base_url
    assert body["token_type"] == "Bearer"
    assert body["need_patient_banner"] is False
    assert "patient" not in body  # p0012 has another id on imaging (seed rule)
    assert body["fhirContext"] == [
        {"reference": f"{ehr}/Patient/p0012", "role": "launch-full-url"},
        {"reference": f"{img}/Patient/img0012", "role": "launch-full-url"}]
    details = {d["locations"][0]: d for d in body["authorization_details"]}
    assert details[ehr]["scope"] == "launch/patient patient/Patient.rs patient/Observation.rs"
    assert details[ehr]["patient"] == "p0012"
    assert details[img]["scope"] == "launch/patient patient/Patient.rs patient/ImagingStudy.rs"
    assert details[img]["patient"] == "img0012"
    assert set(body["scope"].split()) == {"launch/patient", "openid", "fhirUser",
                                          "patient/Patient.rs", "patient/Observation.rs",
                                          "patient/ImagingStudy.rs"}
    token = jwt.decode(body["access_token"], await _jwks(ua))
    assert token.header["typ"] == "at+jwt" and token.header["alg"] == "RS256"
    claims = token.claims
    assert claims["aud"] == [ehr, img]
    assert claims["iss"] == realm.auth_server.issuer
    assert claims["client_id"] == flow.client_id and claims["sub"] == "patient"
    assert claims["fhirUser"] == f"{ehr}/Patient/p0012"
    assert claims["authorization_details"] == body["authorization_details"]
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    id_token = jwt.decode(body["id_token"], await _jwks(ua)).claims
    assert id_token["aud"] == flow.client_id and id_token["fhirUser"] == claims["fhirUser"]


async def test_practitioner_picks_a_patient_with_one_id_everywhere(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm, resources=("ehr", "lab"),
                scope="launch/patient patient/Patient.rs patient/Observation.rs")
    code = await authorize_code(ua, flow, "clinician", "clinician-demo", patient="p0003")
    body = (await exchange(ua, flow, code)).json()
    assert body["patient"] == "p0003"
    assert "fhirContext" not in body and "id_token" not in body
    assert [d["patient"] for d in body["authorization_details"]] == ["p0003", "p0003"]


async def test_single_aud_launch_is_plain_smart(ua: httpx.AsyncClient,
                                                realm: RealmConfig) -> None:
    flow = Flow(realm, resources=())
    code_page = await ua.get("/authorize", params=flow.params(
        aud=realm.server("ehr").base_url), follow_redirects=True)
    assert code_page.status_code == 200
    from tests.authz.conftest import approve, login, redirect_params
    page = await login(ua, code_page, "patient", "patient-demo")
    code = redirect_params(await approve(ua, page))["code"]
    body = (await exchange(ua, flow, code)).json()
    assert body["patient"] == "p0012"
    claims = jwt.decode(body["access_token"], await _jwks(ua)).claims
    assert claims["aud"] == [realm.server("ehr").base_url]
