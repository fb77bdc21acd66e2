"""A built-in server tells the realm's patient index what a committed system-level write did
to a Patient's linking identifier (fhir/linking.py, fhir/link_reports.py; docs/behaviour.md
"Linking a patient's records across servers"). The test AS records every report it gets."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from smartrealm.fhir.link_reports import HttpLinkReporter
from smartrealm.fhir.linking import LinkChange
from tests.fhir.conftest import Realm
from tests.fhir.restkit import call, unique

ADMIN = "system/*.cruds"
OTHER_SYSTEM = "urn:oid:2.16.840.1.113883.4.1"


def _patient(rs: Realm, pid: str, *mrns: str, family: str = "Linked") -> dict[str, Any]:
    system = rs.config.patient_identifier_system
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family}],
            "identifier": [{"system": OTHER_SYSTEM, "value": "000-00-0000"},
                           *({"system": system, "value": m} for m in mrns)]}


def _reports(rs: Realm, *pids: str) -> list[dict[str, str]]:
    return [r for r in rs.auth.link_reports if r.get("patient") in pids]


async def _put(rs: Realm, pid: str, body: dict[str, Any], token: str | None = None,
               status: int = 200) -> None:
    response = await call(rs, "PUT", f"Patient/{pid}", token or rs.token(ADMIN), body=body)
    assert response.status_code == status, response.text


async def test_a_system_write_that_changes_the_mrn_is_reported_as_the_servers_own(
        rs: Realm) -> None:
    pid = unique("lr")
    await _put(rs, pid, _patient(rs, pid, "MRN-1"), status=201)
    await _put(rs, pid, _patient(rs, pid, "MRN-2"))
    assert _reports(rs, pid) == [
        {"client": "rs:ehr", "action": "link", "patient": pid, "person": "MRN-1"},
        {"client": "rs:ehr", "action": "link", "patient": pid, "person": "MRN-2"}]


async def test_a_write_that_keeps_the_mrn_reports_nothing(rs: Realm) -> None:
    pid = unique("lr")
    await _put(rs, pid, _patient(rs, pid, "MRN-1"), status=201)
    await _put(rs, pid, _patient(rs, pid, "MRN-1", family="Renamed"))
    other = _patient(rs, pid, "MRN-1", family="Renamed")
    other["identifier"][0]["value"] = "111-11-1111"  # another system's identifier
    await _put(rs, pid, other)
    assert len(_reports(rs, pid)) == 1


async def test_removing_the_mrn_or_making_it_ambiguous_reports_an_unlink(rs: Realm) -> None:
    removed, ambiguous = unique("lr"), unique("lr")
    for pid in (removed, ambiguous):
        await _put(rs, pid, _patient(rs, pid, "MRN-1"), status=201)
    await _put(rs, removed, _patient(rs, removed))
    await _put(rs, ambiguous, _patient(rs, ambiguous, "MRN-1", "MRN-9"))
    for pid in (removed, ambiguous):
        assert _reports(rs, pid)[-1] == {"client": "rs:ehr", "action": "unlink",
                                         "patient": pid}


async def test_a_delete_reports_nothing_the_index_keeps_the_link(rs: Realm) -> None:
    pid = unique("lr")
    await _put(rs, pid, _patient(rs, pid, "MRN-1"), status=201)
    response = await call(rs, "DELETE", f"Patient/{pid}", rs.token(ADMIN))
    assert response.status_code == 204, response.text
    assert len(_reports(rs, pid)) == 1


async def test_a_refused_patient_level_write_reports_nothing(rs: Realm) -> None:
    pid = unique("lr")
    await _put(rs, pid, _patient(rs, pid, "MRN-1"), status=201)
    token = rs.token("patient/Patient.cruds", patient=pid)
    await _put(rs, pid, _patient(rs, pid, "MRN-VICTIM"), token=token, status=403)
    assert len(_reports(rs, pid)) == 1


async def test_a_transaction_reports_after_commit_and_a_failed_one_reports_nothing(
        rs: Realm) -> None:
    a, b = unique("lr"), unique("lr")

    def bundle(*entries: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}

    def put(pid: str, *mrns: str) -> dict[str, Any]:
        return {"resource": _patient(rs, pid, *mrns),
                "request": {"method": "PUT", "url": f"Patient/{pid}"}}

    # The second entry fails (412) after the first has changed a's MRN in the transaction.
    stale = put(b, "MRN-B")
    stale["request"]["ifMatch"] = 'W/"9"'
    response = await call(rs, "POST", "", rs.token(ADMIN), body=bundle(put(a, "MRN-A"), stale))
    assert response.status_code == 412, response.text
    assert _reports(rs, a, b) == []  # rolled back: nothing to tell

    response = await call(rs, "POST", "", rs.token(ADMIN),
                          body=bundle(put(a, "MRN-A"), put(b, "MRN-B")))
    assert response.status_code == 200, response.text
    assert sorted((r["patient"], r["person"]) for r in _reports(rs, a, b)) == sorted(
        [(a, "MRN-A"), (b, "MRN-B")])


async def test_each_batch_entry_and_a_create_are_reported(rs: Realm) -> None:
    pid = unique("lr")
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": _patient(rs, pid, "MRN-B1"),
         "request": {"method": "PUT", "url": f"Patient/{pid}"}},
        {"resource": _patient(rs, "ignored", "MRN-C1"),
         "request": {"method": "POST", "url": "Patient"}}]}
    response = await call(rs, "POST", "", rs.token(ADMIN), body=batch)
    assert response.status_code == 200, response.text
    created = response.json()["entry"][1]["response"]["location"].split("/")[1]
    assert [(r["patient"], r["person"]) for r in _reports(rs, pid, created)] == [
        (pid, "MRN-B1"), (created, "MRN-C1")]


# ------------------------------------------------------------------ when the AS does not take it


class Refusing:
    def __init__(self, status: int) -> None:
        self.status, self.calls = status, 0

    def handler(self, _request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return httpx.Response(self.status, json={"error": "invalid_client"})


async def _no_pause(_seconds: float) -> None:
    return None


def _reporter(transport: httpx.MockTransport) -> HttpLinkReporter:
    return HttpLinkReporter(endpoint="http://as.test/patient-index", server_id="ehr",
                            credentials=lambda: httpx.BasicAuth("rs:ehr", "s"),
                            http=httpx.AsyncClient(transport=transport), sleep=_no_pause)


@pytest.mark.parametrize(("status", "tries"), [(503, 3), (500, 3), (401, 1), (400, 1)])
async def test_an_unavailable_as_is_retried_a_refusal_is_not_and_both_are_logged(
        status: int, tries: int, caplog: pytest.LogCaptureFixture) -> None:
    refusing = Refusing(status)
    changes = [LinkChange("p1", "MRN-SECRET-1"), LinkChange("p2", None)]
    with caplog.at_level(logging.WARNING, logger="smartrealm.fhir.link_reports"):
        await _reporter(httpx.MockTransport(refusing.handler)).report(changes)
    # The first change is tried (again, while the AS may come back); the second is not
    # tried at all once the first could not be delivered, but it is named.
    assert refusing.calls == tries
    [record] = caplog.records
    message = record.getMessage()
    assert "Patient/p1" in message and "Patient/p2" in message
    assert "smartrealm patients rebuild --server ehr" in message
    assert "MRN-SECRET" not in message  # identifier values are patient data


async def test_an_unreachable_as_is_retried_then_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    def down(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("refused", request=request)

    with caplog.at_level(logging.WARNING, logger="smartrealm.fhir.link_reports"):
        await _reporter(httpx.MockTransport(down)).report([LinkChange("p1", "MRN-1")])
    assert calls == 3
    assert "ConnectError" in caplog.records[0].getMessage()
