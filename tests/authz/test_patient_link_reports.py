"""``POST /patient-index`` (authz/views/patient_links.py): a realm FHIR server reports the new
link of one of its own Patients after a system-level write. Only the servers' ``rs:``
clients may call it, each for its own records; bodies are checked exactly."""

from __future__ import annotations

import httpx
import pytest

from smartrealm.authz.stores.sql_patient_index import SqlPatientIndex
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from tests.authz.lifecycle import basic, register_confidential, rs_auth, tokens
from tests.authz.test_patient_index import _patients

MULTI = ("launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs "
         "patient/ImagingStudy.rs")


def _index(realm: RealmConfig) -> SqlPatientIndex:
    return SqlPatientIndex(make_engine(realm.database_url_for(None)))


async def _report(ua: httpx.AsyncClient, headers: dict[str, str],
                  **form: str | list[str]) -> httpx.Response:
    return await ua.post("/patient-index", data=form, headers=headers)


def _error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert "no-store" in response.headers["cache-control"]


async def test_a_servers_report_relinks_its_record_for_the_next_authorization(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    assert await _patients(ua, realm) == {"ehr": "p0012", "imaging": "img0012",
                                          "lab": "lab0012"}
    response = await _report(ua, rs_auth(realm, "ehr"), action="link", patient="p0012",
                             person="MRN000013")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"server": "ehr", "patient": "p0012", "person": "MRN000013"}
    [row] = [r for r in _index(realm).records_of("MRN000013") if r.server_id == "ehr"
             and r.patient_id == "p0012"]
    assert row.source == "system-write"
    # The EHR's p0013 is still MRN000013 too: two records of one person on the EHR is a
    # data problem, but the token is for p0012 (home), so only the other servers count.
    assert await _patients(ua, realm) == {"ehr": "p0012", "imaging": "img0013",
                                          "lab": "lab0013"}

    response = await _report(ua, rs_auth(realm, "ehr"), action="unlink", patient="p0012")
    assert response.status_code == 200, response.text
    assert response.json() == {"server": "ehr", "patient": "p0012", "person": None}
    assert _index(realm).person_of("ehr", "p0012") is None
    assert await _patients(ua, realm) == {"ehr": "p0012", "imaging": None, "lab": None}


async def test_a_server_cannot_report_for_another_servers_records(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    index = _index(realm)
    before = index.person_of("ehr", "p0012")
    # The server is whoever authenticated; a "server" field in the body is not a choice.
    response = await _report(ua, rs_auth(realm, "imaging"), action="link", patient="p0012",
                             person="MRN000013", server="ehr")
    assert response.status_code == 200, response.text
    assert response.json()["server"] == "imaging"
    assert index.person_of("ehr", "p0012") == before
    assert index.person_of("imaging", "p0012") == "MRN000013"
    response = await _report(ua, rs_auth(realm, "imaging"), action="unlink", patient="p0012",
                             server="ehr")
    assert response.status_code == 200, response.text
    assert index.person_of("ehr", "p0012") == before


async def test_a_patient_context_client_or_any_other_caller_gets_invalid_client(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    body = {"action": "link", "patient": "p0012", "person": "MRN000013"}
    patient_token = (await tokens(ua, realm, scope=MULTI))["access_token"]
    confidential = await register_confidential(ua)
    callers = [
        {"Authorization": f"Bearer {patient_token}"},          # a patient app's token
        confidential.headers,                                  # a registered client
        {},                                                    # nobody
        basic("rs:ehr", "wrong"),                              # a server's id, wrong secret
        basic("rs:nope", "x"),                                 # no such server
    ]
    before = _index(realm).person_of("ehr", "p0012")
    for headers in callers:
        response = await _report(ua, headers, **body)
        _error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"].startswith("Basic")
    forms = [{**body, "client_id": confidential.client_id,
              "client_secret": confidential.secret},
             {**body, "client_id": "rs:ehr", "client_secret": "wrong"}]
    for form in forms:
        _error(await _report(ua, {}, **form), 401, "invalid_client")
    assert _index(realm).person_of("ehr", "p0012") == before


@pytest.mark.parametrize("form", [
    {},
    {"patient": "p0012", "person": "MRN1"},                            # no action
    {"action": "move", "patient": "p0012", "person": "MRN1"},
    {"action": ["link", "unlink"], "patient": "p0012", "person": "MRN1"},
    {"action": "link", "person": "MRN1"},                              # no patient
    {"action": "link", "patient": "../p0012", "person": "MRN1"},       # not a FHIR id
    {"action": "link", "patient": "x" * 65, "person": "MRN1"},
    {"action": "link", "patient": ["p0012", "p0013"], "person": "MRN1"},
    {"action": "link", "patient": "p0012"},                            # no person
    {"action": "link", "patient": "p0012", "person": ""},
    {"action": "link", "patient": "p0012", "person": "M" * 256},
    {"action": "link", "patient": "p0012", "person": "MRN\n1"},
    {"action": "link", "patient": "p0012", "person": ["MRN1", "MRN2"]},
    {"action": "unlink", "patient": "p0012", "person": "MRN1"},       # unlink takes none
])
async def test_a_bad_body_is_invalid_request_and_changes_nothing(
        ua: httpx.AsyncClient, realm: RealmConfig, form: dict[str, str | list[str]]) -> None:
    before = _index(realm).person_of("ehr", "p0012")
    _error(await _report(ua, rs_auth(realm, "ehr"), **form), 400, "invalid_request")
    assert _index(realm).person_of("ehr", "p0012") == before


async def test_a_body_that_is_not_a_form_is_invalid_request(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    response = await ua.post("/patient-index", headers=rs_auth(realm, "ehr"),
                             json={"action": "link", "patient": "p0012", "person": "MRN1"})
    _error(response, 400, "invalid_request")


async def test_the_longest_person_is_accepted(ua: httpx.AsyncClient,
                                              realm: RealmConfig) -> None:
    person = "M" * 255
    response = await _report(ua, rs_auth(realm, "lab"), action="link", patient="lab0001",
                             person=person)
    assert response.status_code == 200, response.text
    assert _index(realm).person_of("lab", "lab0001") == person
