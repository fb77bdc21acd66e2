"""The seed's flow over real sockets: the default realm runs as separate uvicorn processes;
the client library discovers, authorizes once and reads from several servers."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from smartrealm.client.brands import fetch_brand_endpoints
from smartrealm.client.discovery import discover
from smartrealm.client.errors import FhirForbidden, FhirUnauthorized
from smartrealm.client.fhir import FhirSession
from smartrealm.client.reuse import check_token_reuse
from smartrealm.realm.config import RealmConfig
from tests.e2e.flow import full_flow

pytestmark = pytest.mark.e2e


def claims_of(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def test_discovery_finds_the_second_server_through_brands(
        live_realm: RealmConfig, http: httpx.AsyncClient) -> None:
    ehr, imaging = live_realm.server("ehr").base_url, live_realm.server("imaging").base_url
    first = await discover(http, ehr)
    endpoints = await fetch_brand_endpoints(http, first)
    assert imaging in {ep.address for ep in endpoints}
    assert {a.url for a in first.associated_endpoints} == {
        rs.base_url for rs in live_realm.resource_servers if rs.base_url != ehr}
    decision = check_token_reuse([first, await discover(http, imaging)])
    assert decision.possible, decision.reasons
    assert decision.authorization_endpoint == live_realm.auth_server.authorization_endpoint


async def test_one_token_two_servers_patient_ids_differ(
        live_realm: RealmConfig, http: httpx.AsyncClient) -> None:
    ehr, imaging = live_realm.server("ehr").base_url, live_realm.server("imaging").base_url
    token = await full_flow(http, live_realm, resources=[ehr, imaging])
    claims = claims_of(token.access_token)
    assert claims["aud"] == [ehr, imaging]
    # Seed rule: ids differ → no top-level patient, one launch-full-url entry per server.
    assert token.patient is None
    assert {c["reference"] for c in token.fhir_context} == {
        f"{ehr}/Patient/p0012", f"{imaging}/Patient/img0012"}
    assert all(c["role"] == "launch-full-url" for c in token.fhir_context)
    assert token.patient_id_for(ehr) == "p0012"
    assert token.patient_id_for(imaging) == "img0012"
    # Each server gets only its own share of the scopes.
    assert "patient/ImagingStudy.rs" in token.scopes_for(imaging)
    assert "patient/ImagingStudy.rs" not in token.scopes_for(ehr)
    ehr_session = FhirSession(http, ehr, token.access_token)
    img_session = FhirSession(http, imaging, token.access_token)
    assert (await ehr_session.read("Patient", "p0012"))["id"] == "p0012"
    vitals = await ehr_session.search("Observation", {"patient": "p0012",
                                                      "category": "vital-signs"})
    assert vitals["total"] > 0
    studies = await img_session.search("ImagingStudy", {"patient": "img0012"})
    assert studies["total"] > 0
    assert all(e["resource"]["subject"]["reference"] == "Patient/img0012"
               for e in studies["entry"])


async def test_token_stays_in_each_servers_compartment(
        live_realm: RealmConfig, http: httpx.AsyncClient) -> None:
    ehr, imaging = live_realm.server("ehr").base_url, live_realm.server("imaging").base_url
    token = await full_flow(http, live_realm, resources=[ehr, imaging])
    img_session = FhirSession(http, imaging, token.access_token)
    # The EHR's id of the patient means nothing on the imaging server: another compartment.
    with pytest.raises(FhirForbidden):
        await img_session.search("ImagingStudy", {"patient": "img0013"})
    with pytest.raises(FhirForbidden):
        await FhirSession(http, ehr, token.access_token).read("Patient", "p0001")


async def test_server_outside_the_audience_refuses_the_token(
        live_realm: RealmConfig, http: httpx.AsyncClient) -> None:
    ehr, imaging = live_realm.server("ehr").base_url, live_realm.server("imaging").base_url
    token = await full_flow(http, live_realm, resources=[ehr, imaging])
    lab = FhirSession(http, live_realm.server("lab").base_url, token.access_token)
    with pytest.raises(FhirUnauthorized) as info:
        await lab.read("Patient", "lab0012")
    assert info.value.error == "invalid_token"


async def test_same_id_everywhere_gives_top_level_patient(
        live_realm: RealmConfig, http: httpx.AsyncClient) -> None:
    servers = [rs.base_url for rs in live_realm.resource_servers]
    token = await full_flow(http, live_realm, resources=servers, username="clinician",
                            patient="p0003")
    assert token.patient == "p0003"
    assert not [c for c in token.fhir_context if c.get("role") == "launch-full-url"]
    assert claims_of(token.access_token)["aud"] == servers
    for base in servers:
        patient = await FhirSession(http, base, token.access_token).read("Patient", "p0003")
        assert patient["id"] == "p0003"


async def test_single_aud_is_an_ordinary_smart_launch(
        live_realm: RealmConfig, http: httpx.AsyncClient) -> None:
    ehr = live_realm.server("ehr").base_url
    token = await full_flow(http, live_realm, resources=[ehr])
    assert claims_of(token.access_token)["aud"] == [ehr]
    assert token.patient == "p0012"
    imaging = FhirSession(http, live_realm.server("imaging").base_url, token.access_token)
    with pytest.raises(FhirUnauthorized):
        await imaging.read("Patient", "img0012")
