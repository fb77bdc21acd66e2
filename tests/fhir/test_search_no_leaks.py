"""Searches never reveal out-of-scope resources (spec §5.3; issue 4 "Searches never leak"):
not through ``_include``/``_revinclude``, ``total``, ``_summary=count``, paging links or
POST ``_search`` — for other patients' compartments, types not granted, and granular
category mismatches. Every test here fails if the access restriction is not applied to
that path (each asserts on data the unrestricted search would return). SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from smartrealm.realm.config import RealmConfig
from tests.fhir.proxy_target import proxied_search_server
from tests.fhir.search_app import SearchServer, entry_ids
from tests.guard.tokens import FakeAuthServer

CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL = f"{CAT}|vital-signs"
LAB = f"{CAT}|laboratory"


def obs(oid: str, pid: str, category: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"text": oid}, "subject": {"reference": f"Patient/{pid}"},
            "category": [{"coding": [{"system": CAT, "code": category}]}]}


DATA: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "pa", "generalPractitioner": [{"reference":
                                                                      "Practitioner/dr"}]},
    {"resourceType": "Patient", "id": "pb"},
    {"resourceType": "Practitioner", "id": "dr"},
    obs("a-vital", "pa", "vital-signs"), obs("a-lab", "pa", "laboratory"),
    obs("b-vital", "pb", "vital-signs"), obs("b-lab", "pb", "laboratory"),
    # A's report that (wrongly, but possibly) cites B's result: an include must not follow.
    {"resourceType": "DiagnosticReport", "id": "r-a", "status": "final",
     "code": {"text": "panel"}, "subject": {"reference": "Patient/pa"},
     "result": [{"reference": "Observation/a-vital"}, {"reference": "Observation/a-lab"},
                {"reference": "Observation/b-lab"}]},
    {"resourceType": "DiagnosticReport", "id": "r-b", "status": "final",
     "code": {"text": "panel"}, "subject": {"reference": "Patient/pb"},
     "result": [{"reference": "Observation/b-lab"}]},
]


@pytest.fixture
async def rs(request: pytest.FixtureRequest, search_server: SearchServer, realm: RealmConfig,
             auth: FakeAuthServer) -> AsyncIterator[SearchServer]:
    """The server itself, or (``THROUGH_PROXY``) the same server behind a proxy-mode server
    (tests/fhir/proxy_target.py). The proxy refuses _include/_revinclude (400), so only the
    totals and paging tests run through it."""
    search_server.load(DATA)
    if getattr(request, "param", "direct") == "direct":
        yield search_server
        return
    async with proxied_search_server(search_server, realm, auth) as proxied:
        yield proxied


THROUGH_PROXY = pytest.mark.parametrize("rs", ["direct", "proxy"], indirect=True)


def patient_a(scope: str, rs: SearchServer) -> str:
    return rs.token(scope, patient="pa")


# --------------------------------------------------------------------------- _include


async def test_include_stays_in_the_patients_compartment(rs: SearchServer) -> None:
    token = patient_a("patient/DiagnosticReport.rs patient/Observation.rs", rs)
    body = await rs.bundle("DiagnosticReport?_include=DiagnosticReport:result", token)
    assert entry_ids(body) == ["DiagnosticReport/r-a"]
    assert entry_ids(body, "include") == ["Observation/a-lab", "Observation/a-vital"]
    unrestricted = await rs.bundle("DiagnosticReport?_id=r-a&_include=DiagnosticReport:result",
                                   rs.token("user/*.rs"))
    assert "Observation/b-lab" in entry_ids(unrestricted, "include")  # the data is there


async def test_include_honours_granular_scopes(rs: SearchServer) -> None:
    token = patient_a(f"patient/DiagnosticReport.rs patient/Observation.rs?category={VITAL}",
                      rs)
    body = await rs.bundle("DiagnosticReport?_include=DiagnosticReport:result", token)
    assert entry_ids(body, "include") == ["Observation/a-vital"]


async def test_include_of_a_type_not_granted_is_left_out(rs: SearchServer) -> None:
    token = patient_a("patient/DiagnosticReport.rs", rs)
    body = await rs.bundle("DiagnosticReport?_include=DiagnosticReport:result"
                           "&_include=DiagnosticReport:patient", token)
    assert entry_ids(body) == ["DiagnosticReport/r-a"]
    assert entry_ids(body, "include") == []
    user = rs.token("user/Observation.rs")
    found = await rs.bundle("Observation?_include=Observation:patient", user)
    assert len(entry_ids(found)) == 4 and entry_ids(found, "include") == []


async def test_include_of_the_patient_under_a_read_only_scope(rs: SearchServer) -> None:
    """``r`` alone on the included type is enough (decision: read or search)."""
    token = patient_a("patient/Observation.rs patient/Patient.r", rs)
    body = await rs.bundle("Observation?_include=Observation:patient", token)
    assert entry_ids(body, "include") == ["Patient/pa"]


# --------------------------------------------------------------------------- _revinclude


async def test_revinclude_only_in_compartment_and_category(rs: SearchServer) -> None:
    token = patient_a(f"patient/Patient.rs patient/Observation.rs?category={LAB}", rs)
    body = await rs.bundle("Patient?_revinclude=Observation:subject", token)
    assert entry_ids(body) == ["Patient/pa"]
    assert entry_ids(body, "include") == ["Observation/a-lab"]


async def test_revinclude_under_user_patient_mix(rs: SearchServer) -> None:
    """Patients are all visible (user/ scope) but observations only for the context
    patient (patient/ scope): B's observations must not ride along with B."""
    token = patient_a("user/Patient.rs patient/Observation.rs", rs)
    body = await rs.bundle("Patient?_revinclude=Observation:subject"
                           "&_revinclude=DiagnosticReport:patient", token)
    assert entry_ids(body) == ["Patient/pa", "Patient/pb"]
    assert entry_ids(body, "include") == ["Observation/a-lab", "Observation/a-vital"]


async def test_revinclude_of_a_type_not_granted(rs: SearchServer) -> None:
    token = patient_a("patient/Patient.rs", rs)
    body = await rs.bundle("Patient?_revinclude=Observation:subject", token)
    assert entry_ids(body) == ["Patient/pa"] and entry_ids(body, "include") == []


# --------------------------------------------------------------------------- totals, paging


@THROUGH_PROXY
async def test_totals_count_only_what_the_token_may_see(rs: SearchServer) -> None:
    token = patient_a(f"patient/Observation.rs?category={VITAL}", rs)
    for query in ("Observation", "Observation?patient=pa", "Observation?_summary=count",
                  "Observation?_total=accurate&_count=0", f"Observation?category={LAB},{VITAL}"):
        body = await rs.bundle(query, token)
        assert body["total"] == 1, query
    counted = await rs.post_search("Observation", "_summary=count", token)
    assert counted.status_code == 200 and counted.json()["total"] == 1
    assert (await rs.bundle("Observation?_summary=count", rs.token("user/*.rs")))["total"] == 4


@THROUGH_PROXY
async def test_patient_search_naming_several_patients_counts_one(rs: SearchServer) -> None:
    token = patient_a("patient/Patient.rs", rs)
    body = await rs.bundle("Patient?_id=pa,pb&_summary=count", token)
    assert body["total"] == 1
    lister = await rs.bundle("Patient?_id=pa,pb&_count=1", token)
    assert entry_ids(lister) == ["Patient/pa"] and {"next", "last"} & {
        link["relation"] for link in lister["link"]} == {"last"}


@THROUGH_PROXY
async def test_paging_links_do_not_hint_at_hidden_matches(rs: SearchServer) -> None:
    token = patient_a(f"patient/Observation.rs?category={VITAL}", rs)
    for query in ("Observation?_count=1", "Observation?_count=1&_total=none"):
        body = await rs.bundle(query, token)
        relations = {link["relation"] for link in body["link"]}
        assert "next" not in relations, query
        assert entry_ids(body) == ["Observation/a-vital"]
    last = await rs.bundle("Observation?_count=1", token)
    assert next(link["url"] for link in last["link"] if link["relation"] == "last") \
        .endswith("_offset=0")
    unrestricted = await rs.bundle("Observation?_count=1&_total=none", rs.token("user/*.rs"))
    assert "next" in {link["relation"] for link in unrestricted["link"]}


async def test_post_search_is_confined_like_get(rs: SearchServer) -> None:
    token = patient_a("patient/Observation.rs patient/Patient.rs", rs)
    response = await rs.post_search("Observation", "_include=Observation:patient", token)
    assert response.status_code == 200
    assert entry_ids(response.json()) == ["Observation/a-lab", "Observation/a-vital"]
    assert entry_ids(response.json(), "include") == ["Patient/pa"]
    other = await rs.post_search("Observation", "patient=pb", token)
    assert other.status_code == 403
