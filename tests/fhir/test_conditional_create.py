"""Conditional create (R4 http.html#ccreate; fhir/rest/conditional.py, docs/behaviour.md
"Writing"): ``If-None-Exist`` is a search by the token itself — 0 matches create (201), 1
answers it (200), more are 412, a bad condition is 400 — and it never matches or reveals a
resource outside the token's scopes. On SQLite and PostgreSQL (``search_server``)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest

from smartrealm.fhir.proxy.app import proxy_capability
from smartrealm.fhir.settings import FhirSettings
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from tests.fhir.proxy_target import proxied_realm
from tests.fhir.search_app import SearchServer
from tests.fhir.sql_repo import Ticker

LOINC = "http://loinc.org"
LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
MRN = "urn:oid:1.2.36.146.595.217.0.1"
ALL = "user/*.cruds"


def observation(patient: str, code: str, category: str = "laboratory") -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": category}]}],
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": f"Patient/{patient}"}}


async def post(server: SearchServer, path: str, token: str, body: Any,
               **headers: str) -> httpx.Response:
    return await server.client.post(
        f"{server.base}/{path}", content=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json",
                 **{k.replace("_", "-"): v for k, v in headers.items()}})


async def ids(server: SearchServer, query: str) -> list[str]:
    bundle = await server.bundle(query, server.token("system/*.rs"))
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []))


@pytest.fixture
def patients(search_server: SearchServer) -> SearchServer:
    search_server.load([{"resourceType": "Patient", "id": pid,
                         "identifier": [{"system": MRN, "value": f"MRN-{pid}"}]}
                        for pid in ("p1", "p2")])
    return search_server


# --------------------------------------------------------------------------- outcomes


async def test_no_match_creates_and_one_match_answers_it(patients: SearchServer) -> None:
    token = patients.token(ALL)
    condition = f"code={LOINC}|1-1&patient=Patient/p1"
    created = await post(patients, "Observation", token, observation("p1", "1-1"),
                         If_None_Exist=condition)
    assert created.status_code == 201, created.text
    oid = created.json()["id"]
    again = await post(patients, "Observation", token, observation("p1", "1-1"),
                       If_None_Exist=condition)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == oid and again.json()["meta"]["versionId"] == "1"
    assert again.headers["location"] == f"{patients.base}/Observation/{oid}/_history/1"
    assert again.headers["etag"] == 'W/"1"'
    # the same condition in another order and form is the same search
    reordered = await post(patients, "Observation", token, observation("p1", "1-1"),
                           If_None_Exist=f"Observation?patient=p1&code={LOINC}|1-1",
                           Prefer="return=minimal")
    assert reordered.status_code == 200 and reordered.content == b""
    assert reordered.headers["location"].endswith(f"/Observation/{oid}/_history/1")
    outcome = await post(patients, "Observation", token, observation("p1", "1-1"),
                         If_None_Exist=condition, Prefer="return=OperationOutcome")
    assert outcome.status_code == 200
    assert "nothing was created" in outcome.json()["issue"][0]["diagnostics"]
    assert await ids(patients, f"Observation?code={LOINC}|1-1") == [oid]


async def test_several_matches_are_412_and_create_nothing(patients: SearchServer) -> None:
    token = patients.token(ALL)
    for _ in range(2):
        assert (await post(patients, "Observation", token,
                           observation("p1", "2-2"))).status_code == 201
    response = await post(patients, "Observation", token, observation("p1", "2-2"),
                          If_None_Exist=f"code={LOINC}|2-2")
    assert response.status_code == 412
    issue = response.json()["issue"][0]
    assert (issue["severity"], issue["code"]) == ("error", "multiple-matches")
    assert len(await ids(patients, f"Observation?code={LOINC}|2-2")) == 2


@pytest.mark.parametrize("condition", [
    "nope=1",                       # unknown parameter: never dropped (it would widen)
    f"code={LOINC}|3-3&nope=1",
    "code=x&_count=1",              # result parameters are not criteria
    "_sort=date",
    "",                             # no criterion at all would match everything
    "code=",
    "date=yesterday",               # malformed value
    "code:text=x",                  # unsupported modifier
    "justaword",                    # not a query
    "Patient?identifier=x",         # another type's search
    "%ff=1",                        # not UTF-8
])
async def test_a_bad_condition_is_400(patients: SearchServer, condition: str) -> None:
    response = await post(patients, "Observation", patients.token(ALL),
                          observation("p1", "3-3"), If_None_Exist=condition)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["code"] == "invalid"
    assert await ids(patients, f"Observation?code={LOINC}|3-3") == []


async def test_a_condition_over_the_search_limits_is_400_too_costly(
        patients: SearchServer) -> None:
    condition = "code=" + ",".join(f"c{i}" for i in range(101))
    response = await post(patients, "Observation", patients.token(ALL),
                          observation("p1", "3-4"), If_None_Exist=condition)
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "too-costly"


async def test_criteria_in_the_url_are_refused_not_ignored(patients: SearchServer) -> None:
    response = await post(patients, f"Observation?code={LOINC}|4-4", patients.token(ALL),
                          observation("p1", "4-4"))
    assert response.status_code == 400
    assert "If-None-Exist" in response.json()["issue"][0]["diagnostics"]
    assert await ids(patients, f"Observation?code={LOINC}|4-4") == []
    formatted = await post(patients, "Observation?_format=json", patients.token(ALL),
                           observation("p1", "4-4"))
    assert formatted.status_code == 201


# --------------------------------------------------------------------------- scopes


async def test_a_patient_token_never_matches_another_patients_resource(
        patients: SearchServer) -> None:
    """p2 has an Observation with the code; p1's app asks for it: it is neither returned
    nor counted, so p1's app creates its own and learns nothing about p2."""
    others = await post(patients, "Observation", patients.token(ALL),
                        observation("p2", "5-5"))
    assert others.status_code == 201
    mine = patients.token("patient/Observation.cs", patient="p1")
    condition = f"code={LOINC}|5-5"
    created = await post(patients, "Observation", mine, observation("p1", "5-5"),
                         If_None_Exist=condition)
    assert created.status_code == 201, created.text
    assert created.json()["subject"] == {"reference": "Patient/p1"}
    # a second p2 record would make the unrestricted search ambiguous: still only p1's
    assert (await post(patients, "Observation", patients.token(ALL),
                       observation("p2", "5-5"))).status_code == 201
    again = await post(patients, "Observation", mine, observation("p1", "5-5"),
                       If_None_Exist=condition)
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
    unrestricted = await post(patients, "Observation", patients.token(ALL),
                              observation("p1", "5-5"), If_None_Exist=condition)
    assert unrestricted.status_code == 412  # three exist; the patient token saw one


async def test_a_patient_condition_naming_another_patient_is_403(
        patients: SearchServer) -> None:
    mine = patients.token("patient/Observation.cs", patient="p1")
    response = await post(patients, "Observation", mine, observation("p1", "6-6"),
                          If_None_Exist="patient=Patient/p2")
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"


async def test_a_patient_app_cannot_probe_another_patients_identifier(
        patients: SearchServer) -> None:
    """The same answer whether the identifier belongs to another patient or to nobody."""
    mine = patients.token("patient/Patient.cs", patient="p1")
    answers = []
    for mrn in ("MRN-p2", "MRN-nobody"):
        response = await post(patients, "Patient", mine, {"resourceType": "Patient"},
                              If_None_Exist=f"identifier={MRN}|{mrn}")
        answers.append((response.status_code, response.json()["issue"][0]["code"]))
    assert answers == [(403, "forbidden"), (403, "forbidden")]
    own = await post(patients, "Patient", mine, {"resourceType": "Patient"},
                     If_None_Exist=f"identifier={MRN}|MRN-p1")
    assert own.status_code == 200 and own.json()["id"] == "p1"


async def test_a_granular_scope_matches_only_inside_itself(patients: SearchServer) -> None:
    assert (await post(patients, "Observation", patients.token(ALL),
                       observation("p1", "7-7", "vital-signs"))).status_code == 201
    lab_only = patients.token("user/Observation.cs?category=laboratory")
    created = await post(patients, "Observation", lab_only, observation("p1", "7-7"),
                         If_None_Exist=f"code={LOINC}|7-7")
    assert created.status_code == 201, created.text
    assert len(await ids(patients, f"Observation?code={LOINC}|7-7")) == 2


async def test_a_conditional_create_needs_search_as_well_as_create(
        patients: SearchServer) -> None:
    create_only = patients.token("user/Observation.c")
    response = await post(patients, "Observation", create_only, observation("p1", "8-8"),
                          If_None_Exist=f"code={LOINC}|8-8")
    assert response.status_code == 403
    assert "If-None-Exist" in response.json()["issue"][0]["diagnostics"]
    assert (await post(patients, "Observation", create_only,
                       observation("p1", "8-8"))).status_code == 201
    search_only = patients.token("user/Observation.s")
    refused = await post(patients, "Observation", search_only, observation("p1", "8-8"),
                         If_None_Exist=f"code={LOINC}|8-8")
    assert refused.status_code == 403


# --------------------------------------------------------------------------- concurrency


async def test_simultaneous_conditional_creates_make_one_resource(
        patients: SearchServer) -> None:
    token = patients.token(ALL)
    replies = await asyncio.gather(*[
        post(patients, "Observation", token, observation("p1", "9-9"),
             If_None_Exist=f"code={LOINC}|9-9") for _ in range(6)])
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200] * 5 + [201], [r.text for r in replies]
    assert len({r.json()["id"] for r in replies}) == 1
    assert len(await ids(patients, f"Observation?code={LOINC}|9-9")) == 1


@pytest.mark.postgres
def test_the_database_lock_holds_across_processes(pg_url: str) -> None:
    """Two stores (as two server processes would have) on one PostgreSQL database: a
    session holding ``exclusive(key)`` makes another session's ``exclusive(key)`` wait
    until it ends; another key does not wait."""
    engines = [make_engine(pg_url) for _ in range(2)]
    first, second = (SqlResourceRepository(e, clock=Ticker()) for e in engines)
    first.create_tables()
    holding, release, other_done = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with first.transaction() as session:
            session.exclusive("Observation?code=x")
            holding.set()
            release.wait(30)

    def wait_for(key: str, done: threading.Event) -> None:
        with second.transaction() as session:
            session.exclusive(key)
            done.set()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(30)
    unrelated = threading.Event()
    wait_for("Observation?code=y", unrelated)
    assert unrelated.is_set()
    waiter = threading.Thread(target=wait_for, args=("Observation?code=x", other_done))
    waiter.start()
    assert not other_done.wait(1.0)  # blocked while the first transaction is open
    release.set()
    holder.join(30)
    waiter.join(30)
    assert other_done.is_set()
    for engine in engines:
        engine.dispose()


# --------------------------------------------------------------------------- Bundles


def entry(resource: dict[str, Any], **request: Any) -> dict[str, Any]:
    return {"resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"], **request}}


async def test_batch_entries_honour_if_none_exist(patients: SearchServer) -> None:
    token = patients.token(ALL)
    condition = f"code={LOINC}|10-10"
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        entry(observation("p1", "10-10"), ifNoneExist=condition)]}
    first = await post(patients, "", token, batch)
    second = await post(patients, "", token, batch)
    statuses = [b.json()["entry"][0]["response"]["status"] for b in (first, second)]
    assert statuses == ["201 Created", "200 OK"]
    assert len(await ids(patients, f"Observation?code={LOINC}|10-10")) == 1
    bad = await post(patients, "", token, {"resourceType": "Bundle", "type": "batch",
                                           "entry": [entry(observation("p1", "10-10"),
                                                           ifNoneExist="nope=1")]})
    assert bad.json()["entry"][0]["response"]["status"].startswith("400")


@pytest.mark.parametrize("entries", [
    [entry(observation("p1", "11-11"), ifNoneExist=f"code={LOINC}|11-11")],
    [{"resource": observation("p1", "11-11") | {"id": "x"},
      "request": {"method": "PUT", "url": "Observation/x", "ifNoneExist": "code=y"}}],
])
async def test_transactions_refuse_if_none_exist(patients: SearchServer,
                                                 entries: list[dict[str, Any]]) -> None:
    response = await post(patients, "", patients.token(ALL),
                          {"resourceType": "Bundle", "type": "transaction",
                           "entry": entries})
    assert response.status_code == 400
    assert "ifNoneExist" in response.json()["issue"][0]["diagnostics"]
    assert await ids(patients, f"Observation?code={LOINC}|11-11") == []


# --------------------------------------------------------------------------- discovery


async def test_the_capability_statement_says_so(search_server: SearchServer,
                                                realm: RealmConfig) -> None:
    statement = (await search_server.client.get(f"{search_server.base}/metadata")).json()
    assert {r["conditionalCreate"] for r in statement["rest"][0]["resource"]} == {True}
    proxied = proxy_capability(FhirSettings(proxied_realm(realm), "ehr"))
    assert {r["conditionalCreate"] for r in proxied["rest"][0]["resource"]} == {False}
