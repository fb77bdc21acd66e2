"""``_include`` and ``_revinclude`` (R4 search.html §3.1.1.5.4) with unrestricted tokens:
what is included, how it is marked, and which include values are refused (400). Runs on
SQLite and PostgreSQL. What restricted tokens may see is in test_search_no_leaks.py."""

from __future__ import annotations

from typing import Any

import pytest

from smartrealm.fhir.rest import includes
from tests.fhir.search_app import SearchServer, entry_ids

LAB = "http://terminology.hl7.org/CodeSystem/observation-category"


def data(base: str) -> list[dict[str, Any]]:
    def obs(oid: str, pid: str, category: str = "laboratory") -> dict[str, Any]:
        return {"resourceType": "Observation", "id": oid, "status": "final",
                "code": {"text": "x"}, "subject": {"reference": f"Patient/{pid}"},
                "category": [{"coding": [{"system": LAB, "code": category}]}],
                "encounter": {"reference": "Encounter/e1"}}

    return [
        {"resourceType": "Patient", "id": "pa",
         "generalPractitioner": [{"reference": "Practitioner/dr"}]},
        {"resourceType": "Patient", "id": "pb"},
        {"resourceType": "Practitioner", "id": "dr"},
        {"resourceType": "Encounter", "id": "e1", "status": "finished",
         "class": {"code": "AMB"}, "subject": {"reference": "Patient/pa"},
         "participant": [{"individual": {"reference": "Practitioner/dr"}}]},
        obs("o1", "pa"), obs("o2", "pa", "vital-signs"), obs("o3", "pb"),
        {"resourceType": "DiagnosticReport", "id": "r1", "status": "final",
         "code": {"text": "cbc"}, "subject": {"reference": "Patient/pa"},
         # an absolute reference is foreign, even on this server's base (never followed)
         "result": [{"reference": "Observation/o1"}, {"reference": f"{base}/Observation/o2"},
                    {"reference": "Observation/missing"}]},
    ]


@pytest.fixture
def loaded(search_server: SearchServer) -> SearchServer:
    search_server.load(data(search_server.base))
    return search_server


async def test_include_patient_of_observations(loaded: SearchServer) -> None:
    token = loaded.token("user/*.rs")
    body = await loaded.bundle("Observation?_include=Observation:patient", token)
    assert entry_ids(body) == ["Observation/o1", "Observation/o2", "Observation/o3"]
    assert entry_ids(body, "include") == ["Patient/pa", "Patient/pb"]  # each once
    assert body["total"] == 3  # includes never count (R4 §3.1.1.5.4)
    included = [e for e in body["entry"] if e["search"]["mode"] == "include"]
    assert all(e["fullUrl"] == f"{loaded.base}/Patient/{e['resource']['id']}"
               for e in included)


async def test_include_with_target_type(loaded: SearchServer) -> None:
    token = loaded.token("user/*.rs")
    by_target = await loaded.bundle("Observation?_id=o1&_include=Observation:subject:Patient",
                                    token)
    assert entry_ids(by_target, "include") == ["Patient/pa"]
    other = await loaded.bundle("Observation?_id=o1&_include=Observation:subject:Group", token)
    assert entry_ids(other, "include") == []
    report = await loaded.bundle("DiagnosticReport?_include=DiagnosticReport:result"
                                 "&_include=DiagnosticReport:patient", token)
    assert entry_ids(report, "include") == ["Observation/o1", "Patient/pa"]


async def test_include_of_non_patient_references(loaded: SearchServer) -> None:
    token = loaded.token("user/*.rs")
    body = await loaded.bundle("Encounter?_include=Encounter:practitioner"
                               "&_include=Encounter:patient", token)
    assert entry_ids(body, "include") == ["Patient/pa", "Practitioner/dr"]
    gp = await loaded.bundle("Patient?_id=pa&_include=Patient:general-practitioner", token)
    assert entry_ids(gp, "include") == ["Practitioner/dr"]


async def test_revinclude(loaded: SearchServer) -> None:
    token = loaded.token("user/*.rs")
    body = await loaded.bundle("Patient?_revinclude=Observation:subject"
                               "&_revinclude=DiagnosticReport:patient", token)
    assert entry_ids(body) == ["Patient/pa", "Patient/pb"]
    assert entry_ids(body, "include") == ["DiagnosticReport/r1", "Observation/o1",
                                          "Observation/o2", "Observation/o3"]
    one = await loaded.bundle("Patient?_id=pb&_revinclude=Observation:patient:Patient", token)
    assert entry_ids(one, "include") == ["Observation/o3"]
    encounters = await loaded.bundle("Encounter?_revinclude=Observation:encounter", token)
    assert entry_ids(encounters, "include") == ["Observation/o1", "Observation/o2",
                                                "Observation/o3"]
    # ImagingStudy is not served by this server: nothing to include, not an error
    none = await loaded.bundle("Patient?_revinclude=ImagingStudy:patient", token)
    assert entry_ids(none, "include") == []


async def test_includes_follow_the_page(loaded: SearchServer) -> None:
    token = loaded.token("user/*.rs")
    page = await loaded.bundle("Observation?_count=1&_include=Observation:patient", token)
    assert entry_ids(page) == ["Observation/o1"] and entry_ids(page, "include") == ["Patient/pa"]
    empty = await loaded.bundle("Observation?_count=0&_include=Observation:patient", token)
    assert "entry" not in empty
    nothing = await loaded.bundle("Observation?code=none&_include=Observation:patient", token)
    assert "entry" not in nothing


async def test_too_many_includes_are_cut_with_an_outcome(loaded: SearchServer,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setattr(includes, "MAX_INCLUDED", 2)
    token = loaded.token("user/*.rs")
    body = await loaded.bundle("Patient?_revinclude=Observation:subject", token)
    assert len(entry_ids(body, "include")) == 2
    outcome = [e for e in body["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome[0]["resource"]["issue"][0]["code"] == "too-costly"


@pytest.mark.parametrize("query", [
    "Observation?_include=Patient:general-practitioner",   # not the searched type
    "Observation?_include=Observation:code",               # not a reference parameter
    "Observation?_include=Observation:nope",
    "Observation?_include=*",
    "Observation?_include=Observation:*",
    "Observation?_include=Observation:patient:Practitioner",
    "Observation?_include:iterate=Observation:patient",
    "Observation?_include=Observation:subject:Patient:x",
    "Patient?_revinclude=Observation:encounter",           # refers to Encounter, not Patient
    "Patient?_revinclude=Observation:subject:Group",
    "Patient?_revinclude=Nope:subject",
    "Patient?_revinclude=Observation",
])
async def test_malformed_includes_are_400(loaded: SearchServer, query: str) -> None:
    response = await loaded.get(query, loaded.token("user/*.rs"))
    assert response.status_code == 400, query
    assert response.json()["issue"][0]["code"] == "invalid"


async def test_capability_statement_lists_includes(loaded: SearchServer) -> None:
    response = await loaded.client.get(f"{loaded.base}/metadata")
    resources = {r["type"]: r for r in response.json()["rest"][0]["resource"]}
    assert "Observation:patient" in resources["Observation"]["searchInclude"]
    assert "DiagnosticReport:result" in resources["DiagnosticReport"]["searchInclude"]
    assert {"Observation:subject", "Observation:patient", "Encounter:patient"} <= set(
        resources["Patient"]["searchRevInclude"])
    assert "Observation:patient" not in resources["Encounter"].get("searchRevInclude", [])
    params = {p["name"]: p["type"] for p in resources["Observation"]["searchParam"]}
    assert params["_lastUpdated"] == "date" and params["value-quantity"] == "quantity"
    assert params["date"] == "date" and params["patient"] == "reference"
