"""Patient picker (search by name and by MRN, paged) and encounter picker (``encounter`` in
the token response: top-level for one server, in the EHR's authorization_details entry for
several)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from joserfc import jwt

from smartrealm.oauth.keys import KeyRing
from smartrealm.realm.config import RealmConfig
from tests.authz.conftest import Flow, approve, csrf, exchange, login, redirect_params, start
from tests.authz.consent_helpers import as_client
from tests.authz.fhir_stub import FhirStub

ENCOUNTER_SCOPE = "launch/patient launch/encounter patient/Encounter.rs patient/Patient.rs"


def radios(page: httpx.Response, name: str) -> list[str]:
    return [part.split('"', 1)[0]
            for part in page.text.split(f'type="radio" name="{name}" value="')[1:]]


async def test_search_by_name(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    await login(ua, await start(ua, Flow(realm)), "clinician", "clinician-demo")
    found = await ua.get("/interaction/patient", params={"name": "Given13"})
    assert radios(found, "patient") == ["p0013"] and "1 patient found" in found.text


async def test_search_by_mrn(ua: httpx.AsyncClient, realm: RealmConfig,
                             stub: FhirStub) -> None:
    await login(ua, await start(ua, Flow(realm)), "clinician", "clinician-demo")
    found = await ua.get("/interaction/patient", params={"mrn": "MRN000017"})
    assert radios(found, "patient") == ["p0017"] and "MRN MRN000017" in found.text
    wanted = quote(f"{realm.patient_identifier_system}|MRN000017", safe="")
    assert f"ehr search _count=25&_offset=0&identifier={wanted}" in stub.calls, stub.calls
    none = await ua.get("/interaction/patient", params={"mrn": "MRN999999"})
    assert radios(none, "patient") == [] and 'id="no-patients"' in none.text


async def test_results_are_paged(realm: RealmConfig, keys: KeyRing) -> None:
    stub = FhirStub(realm, keys, patients=60)
    async with as_client(realm, keys, stub) as (ua, _app):
        await login(ua, await start(ua, Flow(realm)), "clinician", "clinician-demo")
        first = await ua.get("/interaction/patient")
        assert len(radios(first, "patient")) == 25 and "60 patients found" in first.text
        assert "page 1 of 3" in first.text and 'id="previous"' not in first.text
        assert 'href="/interaction/patient?page=2"' in first.text
        last = await ua.get("/interaction/patient", params={"page": "3"})
        assert radios(last, "patient") == [f"p{n:04d}" for n in range(51, 61)]
        assert 'id="next"' not in last.text and 'href="/interaction/patient?page=2"' in last.text
        for silly in ("0", "-1", "abc", "99999999999"):
            page = await ua.get("/interaction/patient",
                                params={"page": silly, "name": "x" * 500})
            assert page.status_code == 200


async def test_a_patient_from_a_later_page_can_be_picked(realm: RealmConfig,
                                                         keys: KeyRing) -> None:
    stub = FhirStub(realm, keys, patients=60)
    async with as_client(realm, keys, stub) as (ua, _app):
        flow = Flow(realm)
        page = await login(ua, await start(ua, flow), "clinician", "clinician-demo")
        page = await ua.post("/interaction/patient", follow_redirects=True,
                             data={"csrf_token": csrf(page.text), "patient": "p0055"})
        body = (await exchange(ua, flow, redirect_params(await approve(ua, page))["code"])).json()
        assert body["patient"] == "p0055"


async def _pick(ua: httpx.AsyncClient, flow: Flow, username: str, password: str,
                patient: str | None, encounter: str | None) -> httpx.Response:
    page = await login(ua, await start(ua, flow), username, password)
    if patient is not None:
        page = await ua.post("/interaction/patient", follow_redirects=True,
                             data={"csrf_token": csrf(page.text), "patient": patient})
    assert str(page.url).endswith("/interaction/encounter"), page.text
    if encounter is None:
        return page
    return await ua.post("/interaction/encounter", follow_redirects=True,
                         data={"csrf_token": csrf(page.text), "encounter": encounter})


async def _token(ua: httpx.AsyncClient, flow: Flow, consent: httpx.Response) -> dict[str, Any]:
    assert str(consent.url).endswith("/interaction/consent"), consent.text
    response = await exchange(ua, flow, redirect_params(await approve(ua, consent))["code"])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_encounter_picker_single_server(ua: httpx.AsyncClient, realm: RealmConfig,
                                              keys: KeyRing) -> None:
    flow = Flow(realm, scope=ENCOUNTER_SCOPE)
    page = await _pick(ua, flow, "clinician", "clinician-demo", "p0003", None)
    assert radios(page, "encounter") == ["enc-p0003-2", "enc-p0003-1", ""]  # newest first
    consent = await ua.post("/interaction/encounter", follow_redirects=True, data={
        "csrf_token": csrf(page.text), "encounter": "enc-p0003-1"})
    assert "Encounter/enc-p0003-1" in consent.text
    body = await _token(ua, flow, consent)
    assert body["encounter"] == "enc-p0003-1" and body["patient"] == "p0003"
    assert "launch/encounter" in body["scope"].split()
    claims = jwt.decode(body["access_token"], keys.public_key_set()).claims
    assert claims["encounter"] == "enc-p0003-1"
    assert body["authorization_details"][0]["encounter"] == "enc-p0003-1"


async def test_encounter_travels_in_the_ehr_entry_with_several_servers(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm, scope=ENCOUNTER_SCOPE, resources=("ehr", "lab"))
    consent = await _pick(ua, flow, "patient", "patient-demo", None, "enc-p0012-2")
    body = await _token(ua, flow, consent)
    assert "encounter" not in body
    details = {d["locations"][0]: d for d in body["authorization_details"]}
    assert details[realm.server("ehr").base_url]["encounter"] == "enc-p0012-2"
    assert "encounter" not in details[realm.server("lab").base_url]
    assert "launch/encounter" not in details[realm.server("lab").base_url]["scope"].split()


async def test_no_particular_encounter(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm, scope=ENCOUNTER_SCOPE)
    consent = await _pick(ua, flow, "patient", "patient-demo", None, "")
    body = await _token(ua, flow, consent)
    assert "encounter" not in body and "launch/encounter" not in body["scope"].split()


async def test_an_encounter_not_offered_is_refused(ua: httpx.AsyncClient,
                                                   realm: RealmConfig) -> None:
    flow = Flow(realm, scope=ENCOUNTER_SCOPE)
    page = await _pick(ua, flow, "clinician", "clinician-demo", "p0003", None)
    for bad in ("enc-p0004-1", "../Patient/p0003", "x" * 300):
        response = await ua.post("/interaction/encounter",
                                 data={"csrf_token": csrf(page.text), "encounter": bad})
        assert response.status_code == 400 and "Choose an encounter" in response.text


async def test_no_encounter_picker_without_the_ehr_in_the_audience(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm, scope=ENCOUNTER_SCOPE, resources=("lab",))
    page = await login(ua, await start(ua, flow), "patient", "patient-demo")
    assert str(page.url).endswith("/interaction/consent")
    assert "launch/encounter" in page.text.split("Not allowed here")[1]
