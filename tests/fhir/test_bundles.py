"""batch and transaction Bundles at POST [base] (R4 http.html#transaction)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fhir.conftest import Realm
from tests.fhir.restkit import call, observation, patient, unique

ALL = "user/*.cruds"
URN = "urn:uuid:0b5c8f3e-8f0e-4a7e-9d7e-3f2d1c0b9a87"


def entry(method: str, url: str, resource: dict[str, Any] | None = None,
          full_url: str | None = None, **request: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        item["resource"] = resource
    if full_url is not None:
        item["fullUrl"] = full_url
    return item


def bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


@pytest.fixture
def token(rs: Realm) -> str:
    return rs.token(ALL)


async def test_transaction_resolves_urn_references(rs: Realm, token: str) -> None:
    family = unique("Fam")
    sent = bundle("transaction",
                  entry("POST", "Observation", observation("x") | {
                      "subject": {"reference": URN}}),
                  entry("POST", "Patient", patient(family=family), URN))
    response = await call(rs, "POST", "", token, body=sent)  # POST [base], no slash
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "transaction-response"
    obs_entry, patient_entry = body["entry"]
    for item in (obs_entry, patient_entry):
        assert item["response"]["status"] == "201 Created"
        assert item["response"]["etag"] == 'W/"1"'
        assert item["response"]["location"].endswith("/_history/1")
        assert item["response"]["lastModified"]
    pid = patient_entry["resource"]["id"]
    assert patient_entry["response"]["location"] == f"Patient/{pid}/_history/1"
    assert obs_entry["resource"]["subject"]["reference"] == f"Patient/{pid}"
    stored = await call(rs, "GET", obs_entry["response"]["location"].rsplit("/_history", 1)[0],
                        token)
    assert stored.json()["subject"]["reference"] == f"Patient/{pid}"
    found = await call(rs, "GET", f"Patient?family={family}", token)
    assert found.json()["total"] == 1


async def test_transaction_is_all_or_nothing(rs: Realm, token: str) -> None:
    keep = unique("obs")
    sent = bundle("transaction",
                  entry("PUT", f"Observation/{keep}", observation("p0001", resource_id=keep)),
                  entry("POST", "Observation", {**observation("p0001"), "bogus": 1}))
    response = await call(rs, "POST", "", token, body=sent)
    assert response.status_code == 422
    issue = response.json()["issue"][0]
    assert issue["diagnostics"].startswith("Bundle.entry[1]")
    assert issue["expression"] == ["Bundle.entry[1].resource.bogus"]
    assert (await call(rs, "GET", f"Observation/{keep}", token)).status_code == 404


async def test_transaction_refusal_is_403_naming_the_entry(rs: Realm) -> None:
    token = rs.token("user/Observation.cruds")  # no Condition scope
    keep = unique("obs")
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/p0001"},
                 "code": {"text": "x"}}
    sent = bundle("transaction",
                  entry("PUT", f"Observation/{keep}", observation("p0001", resource_id=keep)),
                  entry("POST", "Condition", condition))
    response = await call(rs, "POST", "/", token, body=sent)
    assert response.status_code == 403
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1]"]
    assert "Bundle.entry[1]" in response.json()["issue"][0]["diagnostics"]
    assert (await call(rs, "GET", f"Observation/{keep}", token)).status_code == 404


async def test_transaction_order_delete_post_put(rs: Realm, token: str) -> None:
    gone, kept = unique("obs"), unique("obs")
    for oid in (gone, kept):
        await call(rs, "PUT", f"Observation/{oid}", token,
                   body=observation("p0001", resource_id=oid))
    sent = bundle("transaction",
                  entry("PUT", f"Observation/{kept}",
                        observation("p0001", resource_id=kept, status="amended"),
                        ifMatch='W/"1"'),
                  entry("DELETE", f"Observation/{gone}"))
    response = await call(rs, "POST", "", token, body=sent, Prefer="return=minimal")
    assert response.status_code == 200
    put, delete = response.json()["entry"]
    assert put["response"]["status"] == "200 OK" and "resource" not in put
    assert put["response"]["etag"] == 'W/"2"'
    assert delete["response"]["status"] == "204 No Content"
    assert (await call(rs, "GET", f"Observation/{gone}", token)).status_code == 410


async def test_transaction_if_match_conflict_is_412(rs: Realm, token: str) -> None:
    oid = unique("obs")
    await call(rs, "PUT", f"Observation/{oid}", token, body=observation("p0001", resource_id=oid))
    sent = bundle("transaction", entry("PUT", f"Observation/{oid}",
                                       observation("p0001", resource_id=oid), ifMatch='W/"9"'))
    assert (await call(rs, "POST", "", token, body=sent)).status_code == 412


@pytest.mark.parametrize(("entries", "text"), [
    ([entry("GET", "Patient/p0001")], "may only write"),
    ([entry("PUT", "Observation/dup", observation("p0001", resource_id="dup")),
      entry("DELETE", "Observation/dup")], "written twice"),
    ([entry("POST", "Observation", observation("p0001") | {
        "subject": {"reference": "urn:uuid:nowhere"}})], "names no entry"),
    ([entry("POST", "Observation?code=x", observation("p0001"))], "conditional"),
    ([entry("POST", "Observation", observation("p0001"), ifNoneExist="code=x")],
     "conditional"),
    ([entry("POST", "Observation", patient())], "is not a Observation"),
    ([entry("PATCH", "Observation/x", observation("p0001"))], "not a supported"),
    ([entry("POST", "http://elsewhere.example/fhir/Observation", observation("p0001"))],
     "not on this server"),
    ([{"resource": observation("p0001")}], "request is missing"),
])
async def test_malformed_transactions_are_400(rs: Realm, token: str,
                                              entries: list[dict[str, Any]],
                                              text: str) -> None:
    response = await call(rs, "POST", "", token, body=bundle("transaction", *entries))
    assert response.status_code == 400, response.text
    assert text in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("body", [
    {"resourceType": "Bundle", "type": "collection", "entry": []},
    {"resourceType": "Bundle", "type": "batch", "entry": {"not": "a list"}},
    {"resourceType": "Patient"},
    [1, 2],
])
async def test_not_a_batch_or_transaction_is_400(rs: Realm, token: str, body: Any) -> None:
    assert (await call(rs, "POST", "", token, body=body)).status_code == 400


async def test_empty_transaction_and_batch(rs: Realm, token: str) -> None:
    for kind in ("transaction", "batch"):
        response = await call(rs, "POST", "", token, body=bundle(kind))
        assert response.status_code == 200
        assert response.json() == {"resourceType": "Bundle", "type": f"{kind}-response"}


async def test_batch_entries_are_independent(rs: Realm) -> None:
    token = rs.token("user/Observation.cruds user/Patient.r")
    oid = unique("obs")
    sent = bundle(
        "batch",
        entry("PUT", f"Observation/{oid}", observation("p0001", resource_id=oid)),
        entry("POST", "Observation", {**observation("p0001"), "bogus": 1}),
        entry("POST", "Condition", {"resourceType": "Condition",
                                    "subject": {"reference": "Patient/p0001"}}),
        entry("GET", "Patient/p0001"),
        entry("GET", f"Patient/{unique()}"),
        entry("GET", "Observation?patient=p0001&_count=1"),
        entry("GET", f"Observation/{oid}/_history"),
        entry("DELETE", f"Observation/{unique()}"),
        entry("POST", "Observation?x=y", observation("p0001")),
    )
    response = await call(rs, "POST", "", token, body=sent)
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created", "422 Unprocessable Entity", "403 Forbidden", "200 OK",
                        "404 Not Found", "200 OK", "200 OK", "404 Not Found",
                        "400 Bad Request"]
    entries = body["entry"]
    assert entries[0]["resource"]["id"] == oid
    assert entries[1]["response"]["outcome"]["issue"][0]["expression"] == ["Observation.bogus"]
    assert entries[3]["resource"]["id"] == "p0001" and entries[3]["response"]["etag"]
    assert entries[5]["resource"]["type"] == "searchset"
    assert entries[6]["resource"]["type"] == "history"
    for failed in (1, 2, 4, 7, 8):
        assert entries[failed]["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert "resource" not in entries[failed]


async def test_batch_on_a_read_only_server(rs: Realm) -> None:
    token = rs.token(ALL, server="imaging")
    sent = bundle("batch", entry("GET", "Patient/p0001"),
                  entry("POST", "ImagingStudy", {"resourceType": "ImagingStudy",
                                                 "status": "available",
                                                 "subject": {"reference": "Patient/p0001"}}))
    response = await call(rs, "POST", "", token, server="imaging", body=sent)
    assert [e["response"]["status"] for e in response.json()["entry"]] == [
        "200 OK", "405 Method Not Allowed"]
    refused = await call(rs, "POST", "", token, server="imaging",
                         body=bundle("transaction", sent["entry"][1]))
    assert refused.status_code == 405


async def test_bundles_need_a_token(rs: Realm) -> None:
    assert (await call(rs, "POST", "", body=bundle("batch"))).status_code == 401


# --------------------------------------------------------------------------- properties

LEAF = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
JSON = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
URLS = st.sampled_from(["Observation", "Observation/x1", "Observation/x1/_history",
                        "Observation/x1/_history/1", "_history", "Observation/_history",
                        "Patient?name=a", "Foo/1", "", "/", "Observation//x", "http://x/y",
                        "Observation?x=1", "metadata", "Patient/p0001"])
RESOURCES = st.one_of(JSON, st.builds(lambda extra: observation("p0001") | extra,
                                      st.dictionaries(st.sampled_from(
                                          ["id", "status", "subject", "code", "meta"]),
                                          JSON, max_size=2)))
ENTRIES = st.lists(st.one_of(JSON, st.fixed_dictionaries(
    {"request": st.fixed_dictionaries({"method": st.sampled_from(
        ["GET", "POST", "PUT", "DELETE", "PATCH", "get"]), "url": URLS}),
     "resource": RESOURCES},
    optional={"fullUrl": st.sampled_from(["urn:uuid:a", "urn:uuid:b", "x"])})), max_size=4)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["batch", "transaction", "collection", 7]), entries=ENTRIES)
async def test_random_bundles_are_never_a_500(rs: Realm, kind: Any,
                                              entries: list[Any]) -> None:
    token = rs.token(ALL)
    response = await call(rs, "POST", "", token,
                          body={"resourceType": "Bundle", "type": kind, "entry": entries})
    assert response.status_code < 500, response.text
    assert response.json()["resourceType"] in ("Bundle", "OperationOutcome")
