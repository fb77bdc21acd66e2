"""vread and history (instance, type, system) on the in-process EHR: Bundles, paging,
``_since``, statuses, and that history never shows a version outside the token's scopes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fhir.conftest import Realm
from tests.fhir.restkit import LAB, call, observation, unique

ALL = "user/*.cruds"


@pytest.fixture
def token(rs: Realm) -> str:
    return rs.token(ALL)


async def _three_versions(rs: Realm, token: str, pid: str = "p0001") -> str:
    oid = unique("obs")
    await call(rs, "PUT", f"Observation/{oid}", token, body=observation(pid, resource_id=oid))
    await call(rs, "PUT", f"Observation/{oid}", token,
               body=observation(pid, resource_id=oid, status="amended"))
    await call(rs, "DELETE", f"Observation/{oid}", token)
    return oid


def _entries(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "history"
    entries: list[dict[str, Any]] = body.get("entry", [])
    return entries


def _link(response: httpx.Response, relation: str) -> str | None:
    return next((x["url"] for x in response.json()["link"] if x["relation"] == relation), None)


async def test_vread(rs: Realm, token: str) -> None:
    oid = await _three_versions(rs, token)
    first = await call(rs, "GET", f"Observation/{oid}/_history/1", token)
    assert first.status_code == 200
    assert first.json()["status"] == "final" and first.json()["meta"]["versionId"] == "1"
    assert first.headers["etag"] == 'W/"1"'
    second = await call(rs, "GET", f"Observation/{oid}/_history/2", token)
    assert second.json()["status"] == "amended"
    assert (await call(rs, "GET", f"Observation/{oid}/_history/3", token)).status_code == 410
    for missing in ("4", "0", "abc", "99999999999"):
        response = await call(rs, "GET", f"Observation/{oid}/_history/{missing}", token)
        assert response.status_code == 404, missing
    assert (await call(rs, "GET", f"Observation/{unique()}/_history/1", token)
            ).status_code == 404


async def test_instance_history_newest_first(rs: Realm, token: str) -> None:
    oid = await _three_versions(rs, token)
    response = await call(rs, "GET", f"Observation/{oid}/_history", token)
    entries = _entries(response)
    assert response.json()["total"] == 3
    assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert [e["request"]["method"] for e in entries] == ["DELETE", "PUT", "POST"]
    assert [e["response"]["status"] for e in entries] == ["204 No Content", "200 OK",
                                                          "201 Created"]
    assert "resource" not in entries[0]
    assert entries[1]["resource"]["status"] == "amended"
    assert entries[2]["fullUrl"] == f"{rs.ehr}/Observation/{oid}"
    assert all(e["response"]["lastModified"] for e in entries)
    assert (await call(rs, "GET", f"Observation/{unique()}/_history", token)
            ).status_code == 404


async def test_paging_and_since(rs: Realm, token: str) -> None:
    oid = await _three_versions(rs, token)
    first = await call(rs, "GET", f"Observation/{oid}/_history?_count=2", token)
    assert len(_entries(first)) == 2
    next_url = _link(first, "next")
    assert next_url is not None and "_offset=2" in next_url and _link(first, "previous") is None
    second = await rs.clients["ehr"].get(next_url, headers={"Authorization": f"Bearer {token}"})
    assert [e["response"]["etag"] for e in _entries(second)] == ['W/"1"']
    assert _link(second, "next") is None and _link(second, "previous") is not None
    since = _entries(first)[1]["response"]["lastModified"].replace("+00:00", "Z")
    recent = await call(rs, "GET", f"Observation/{oid}/_history?_since={since}", token)
    assert [e["response"]["etag"] for e in _entries(recent)] == ['W/"3"', 'W/"2"']
    assert "_since=" in (_link(recent, "self") or "")


async def test_type_and_system_history(rs: Realm, token: str) -> None:
    oid = await _three_versions(rs, token)
    type_history = await call(rs, "GET", "Observation/_history?_count=3", token)
    assert {e["fullUrl"] for e in _entries(type_history)} == {f"{rs.ehr}/Observation/{oid}"}
    assert type_history.json()["total"] > 3
    system = await call(rs, "GET", "_history?_count=3", token)
    assert len(_entries(system)) == 3
    assert system.json()["total"] > type_history.json()["total"]
    assert _link(system, "next") == f"{rs.ehr}/_history?_count=3&_offset=3"


@pytest.mark.parametrize(("query", "status"), [
    ("_since=yesterday", 400), ("_count=-1", 400), ("_at=2020", 400), ("_list=x", 400),
    ("_format=json&_pretty=true", 200), ("foo=bar", 200),
])
async def test_history_parameters(rs: Realm, token: str, query: str, status: int) -> None:
    response = await call(rs, "GET", f"Observation/_history?{query}", token)
    assert response.status_code == status


async def test_strict_handling_refuses_unknown_history_parameters(rs: Realm,
                                                                  token: str) -> None:
    response = await call(rs, "GET", "_history?foo=bar", token, Prefer="handling=strict")
    assert response.status_code == 400


# --------------------------------------------------------------------------- scopes


async def test_letters(rs: Realm, token: str) -> None:
    oid = await _three_versions(rs, token)
    read_only = rs.token("user/Observation.r")
    assert (await call(rs, "GET", f"Observation/{oid}/_history", read_only)).status_code == 200
    assert (await call(rs, "GET", f"Observation/{oid}/_history/1", read_only)
            ).status_code == 200
    assert (await call(rs, "GET", "Observation/_history", read_only)).status_code == 403
    assert (await call(rs, "GET", "_history", read_only)).status_code == 403
    search_only = rs.token("user/Observation.s")
    assert (await call(rs, "GET", f"Observation/{oid}/_history", search_only)
            ).status_code == 403
    assert (await call(rs, "GET", f"Observation/{oid}/_history/1", search_only)
            ).status_code == 403
    assert (await call(rs, "GET", "Observation/_history", search_only)).status_code == 200
    system = await call(rs, "GET", "_history", search_only)
    assert {e["fullUrl"].split("/")[-2] for e in _entries(system)} == {"Observation"}
    assert (await call(rs, "GET", "Patient/_history", search_only)).status_code == 403


async def test_moved_into_the_compartment_hides_the_old_versions(rs: Realm,
                                                                 token: str) -> None:
    """An Observation first filed for p0002, then corrected to p0001: p0001's app sees
    only the corrected version, nowhere in history."""
    oid = unique("moved")
    await call(rs, "PUT", f"Observation/{oid}", token, body=observation("p0002", resource_id=oid))
    await call(rs, "PUT", f"Observation/{oid}", token, body=observation("p0001", resource_id=oid))
    mine = rs.token("patient/Observation.rs", patient="p0001")
    instance = await call(rs, "GET", f"Observation/{oid}/_history", mine)
    assert [e["response"]["etag"] for e in _entries(instance)] == ['W/"2"']
    assert "total" not in instance.json()  # restricted: a total would count hidden versions
    assert (await call(rs, "GET", f"Observation/{oid}/_history/1", mine)).status_code == 403
    assert (await call(rs, "GET", f"Observation/{oid}/_history/2", mine)).status_code == 200
    typed = await call(rs, "GET", "Observation/_history?_count=200", mine)
    versions = [(e["fullUrl"], e["response"]["etag"]) for e in _entries(typed)]
    assert (f"{rs.ehr}/Observation/{oid}", 'W/"1"') not in versions
    assert (f"{rs.ehr}/Observation/{oid}", 'W/"2"') in versions
    for entry in _entries(typed):
        assert entry["resource"]["subject"]["reference"] == "Patient/p0001"
    theirs = rs.token("patient/Observation.rs", patient="p0002")
    assert (await call(rs, "GET", f"Observation/{oid}/_history", theirs)).status_code == 403
    system = await call(rs, "GET", "_history?_count=200", theirs)
    assert oid not in str(system.json())


async def test_granular_scope_filters_history(rs: Realm, token: str) -> None:
    oid = unique("cat")
    await call(rs, "PUT", f"Observation/{oid}", token,
               body=observation("p0003", "vital-signs", resource_id=oid))
    await call(rs, "PUT", f"Observation/{oid}", token,
               body=observation("p0003", "laboratory", resource_id=oid))
    lab_only = rs.token(f"user/Observation.rs?category={LAB}")
    instance = await call(rs, "GET", f"Observation/{oid}/_history", lab_only)
    assert [e["response"]["etag"] for e in _entries(instance)] == ['W/"2"']
    await call(rs, "PUT", f"Observation/{oid}", token,
               body=observation("p0003", "vital-signs", resource_id=oid))
    assert (await call(rs, "GET", f"Observation/{oid}/_history", lab_only)).status_code == 403


async def test_deleted_resources_stay_out_of_restricted_history(rs: Realm, token: str) -> None:
    oid = await _three_versions(rs, token, pid="p0004")
    mine = rs.token("patient/Observation.rs", patient="p0004")
    instance = await call(rs, "GET", f"Observation/{oid}/_history", mine)
    assert [e["response"]["etag"] for e in _entries(instance)] == ['W/"3"', 'W/"2"', 'W/"1"']
    typed = await call(rs, "GET", "Observation/_history?_count=200", mine)
    assert oid not in str(typed.json())
    other = rs.token("patient/Observation.rs", patient="p0005")
    assert (await call(rs, "GET", f"Observation/{oid}/_history", other)).status_code == 403
    assert (await call(rs, "GET", f"Observation/{oid}/_history/3", other)).status_code == 403


async def test_patient_sees_own_record_history(rs: Realm, token: str) -> None:
    record = (await call(rs, "GET", "Patient/p0006", token)).json()
    await call(rs, "PUT", "Patient/p0006", token, body={**record, "gender": "other"})
    mine = rs.token("patient/Patient.rs", patient="p0006")
    instance = await call(rs, "GET", "Patient/p0006/_history", mine)
    assert len(_entries(instance)) >= 2
    typed = await call(rs, "GET", "Patient/_history", mine)
    assert {e["fullUrl"] for e in _entries(typed)} == {f"{rs.ehr}/Patient/p0006"}
    assert (await call(rs, "GET", "Patient/p0007/_history", mine)).status_code == 403
