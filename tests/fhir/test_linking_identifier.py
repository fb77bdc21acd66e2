"""The realm's linking identifier (fhir/linking.py; docs/behaviour.md "Linking a patient's
records across servers"): patient- and user-level writes may not add, change or remove a
Patient's identifier with the realm's ``patient_identifier_system``; system-level writes may.
Every test runs on the built-in server and through a proxy-mode server in front of it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.fhir.linking import linking_identifiers
from tests.fhir import proxy_target
from tests.fhir.conftest import Realm
from tests.fhir.restkit import call, unique

proxy_app = proxy_target.proxy_app
proxy_rs = proxy_target.proxy_rs

ADMIN = "system/*.cruds"
OTHER_SYSTEM = "urn:oid:2.16.840.1.113883.4.1"  # another identifier: never guarded


@pytest.fixture(params=["direct", "proxy"])
def rs(request: pytest.FixtureRequest, rs: Realm, proxy_rs: Realm) -> Realm:
    return proxy_rs if request.param == "proxy" else rs


def _proxied(rs: Realm) -> bool:
    return rs.config.server("ehr").mode == "proxy"


def _system(rs: Realm) -> str:
    return rs.config.patient_identifier_system


def _patient(rs: Realm, pid: str, mrn: str | None, family: str = "Linked",
             ssn: str = "000-00-0000") -> dict[str, Any]:
    identifiers = [{"system": OTHER_SYSTEM, "value": ssn}]
    if mrn is not None:
        identifiers.insert(0, {"system": _system(rs), "value": mrn})
    return {"resourceType": "Patient", "id": pid, "identifier": identifiers,
            "name": [{"family": family}]}


async def _stored(rs: Realm, pid: str) -> dict[str, Any]:
    response = await call(rs, "GET", f"Patient/{pid}", rs.token(ADMIN))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "forbidden"
    assert "managed by the realm" in outcome["issue"][0]["diagnostics"]


async def _own_patient(rs: Realm, mrn: str | None = "MRN-A") -> str:
    pid = unique("lk")
    created = await call(rs, "PUT", f"Patient/{pid}", rs.token(ADMIN),
                         body=_patient(rs, pid, mrn))
    assert created.status_code == 201, created.text
    return pid


@pytest.mark.parametrize("context", ["patient", "user"])
async def test_a_patient_or_user_write_cannot_change_the_mrn(rs: Realm, context: str) -> None:
    pid = await _own_patient(rs)
    token = rs.token(f"{context}/Patient.cruds", patient=pid if context == "patient" else None)
    for changed in (_patient(rs, pid, "MRN-VICTIM"),      # another person's MRN
                    _patient(rs, pid, None)):             # the MRN removed
        _refused(await call(rs, "PUT", f"Patient/{pid}", token, body=changed))
    added = _patient(rs, pid, "MRN-A")
    added["identifier"].append({"system": _system(rs), "value": "MRN-B"})  # a second MRN
    _refused(await call(rs, "PUT", f"Patient/{pid}", token, body=added))
    relabelled = _patient(rs, pid, "MRN-A")
    relabelled["identifier"][0]["use"] = "old"  # any part of it is part of the link
    _refused(await call(rs, "PUT", f"Patient/{pid}", token, body=relabelled))
    assert linking_identifiers(await _stored(rs, pid), _system(rs)) == linking_identifiers(
        _patient(rs, pid, "MRN-A"), _system(rs))
    # Everything else of the record stays writable, the MRN kept as it is.
    kept = _patient(rs, pid, "MRN-A", family="Renamed", ssn="111-11-1111")
    assert (await call(rs, "PUT", f"Patient/{pid}", token, body=kept)).status_code == 200
    assert (await _stored(rs, pid))["name"] == [{"family": "Renamed"}]


async def test_a_user_cannot_create_a_patient_with_an_mrn(rs: Realm) -> None:
    staff = rs.token("user/Patient.cu")
    pid = unique("lk")
    _refused(await call(rs, "POST", "Patient", staff, body=_patient(rs, pid, "MRN-NEW")))
    _refused(await call(rs, "PUT", f"Patient/{pid}", staff,
                        body=_patient(rs, pid, "MRN-NEW")))
    assert (await call(rs, "GET", f"Patient/{pid}", rs.token(ADMIN))).status_code == 404
    assert (await call(rs, "POST", "Patient", staff,
                       body=_patient(rs, pid, None))).status_code == 201


async def test_a_deleted_patient_cannot_come_back_with_an_mrn(rs: Realm) -> None:
    """Deleting is allowed (the index keeps the link; no record, no patient context), but
    recreating the record is a create: the MRN cannot be chosen by the patient."""
    pid = await _own_patient(rs)
    mine = rs.token("patient/Patient.cud", patient=pid)
    assert (await call(rs, "DELETE", f"Patient/{pid}", mine)).status_code == 204
    _refused(await call(rs, "PUT", f"Patient/{pid}", mine,
                        body=_patient(rs, pid, "MRN-VICTIM")))
    assert (await call(rs, "PUT", f"Patient/{pid}", mine,
                       body=_patient(rs, pid, None))).status_code == 201


async def test_a_system_write_may_change_the_mrn(rs: Realm) -> None:
    pid = await _own_patient(rs)
    system = rs.token("system/Patient.cu")
    assert (await call(rs, "PUT", f"Patient/{pid}", system,
                       body=_patient(rs, pid, "MRN-MERGED"))).status_code == 200
    assert linking_identifiers(await _stored(rs, pid), _system(rs)) == linking_identifiers(
        _patient(rs, pid, "MRN-MERGED"), _system(rs))
    assert (await call(rs, "POST", "Patient", system,
                       body=_patient(rs, unique("lk"), "MRN-C"))).status_code == 201


async def test_a_token_mixing_contexts_is_judged_by_the_weakest(rs: Realm) -> None:
    pid = await _own_patient(rs)
    mixed = rs.token("system/Patient.u user/Patient.u")
    _refused(await call(rs, "PUT", f"Patient/{pid}", mixed,
                        body=_patient(rs, pid, "MRN-VICTIM")))


@pytest.mark.parametrize("kind", ["transaction", "batch"])
async def test_every_bundle_entry_is_checked(rs: Realm, kind: str) -> None:
    if _proxied(rs):
        pytest.skip("the proxy refuses Bundles outright (tests/fhir/test_write_access.py)")
    pid = await _own_patient(rs)
    token = rs.token("patient/Patient.cruds", patient=pid)
    bundle = {"resourceType": "Bundle", "type": kind, "entry": [
        {"request": {"method": "PUT", "url": f"Patient/{pid}"},
         "resource": _patient(rs, pid, "MRN-VICTIM")}]}
    response = await call(rs, "POST", "", token, body=bundle)
    if kind == "transaction":
        _refused(response)
        assert response.json()["issue"][0]["expression"] == ["Bundle.entry[0]"]
    else:
        assert response.status_code == 200, response.text
        entry = response.json()["entry"][0]
        assert entry["response"]["status"] == "403 Forbidden"
        assert "managed by the realm" in str(entry["response"]["outcome"])
    assert linking_identifiers(await _stored(rs, pid), _system(rs)) == linking_identifiers(
        _patient(rs, pid, "MRN-A"), _system(rs))


_identifier = st.fixed_dictionaries({"system": st.sampled_from(["S", "T"]),
                                     "value": st.text(min_size=1, max_size=4)},
                                    optional={"use": st.sampled_from(["usual", "old"])})


@given(st.lists(_identifier, max_size=5), st.randoms())
def test_the_link_ignores_order_and_other_systems(identifiers: list[dict[str, str]],
                                                  rnd: Any) -> None:
    shuffled = list(identifiers)
    rnd.shuffle(shuffled)
    others = [i for i in identifiers if i["system"] != "S"]
    kept = [i for i in shuffled if i["system"] == "S"] + others[:1]
    patient = {"resourceType": "Patient", "identifier": identifiers}
    assert linking_identifiers(patient, "S") == linking_identifiers(
        {"resourceType": "Patient", "identifier": kept}, "S")
    dropped = [i for i in identifiers if i["system"] == "S"][1:] + others
    if any(i["system"] == "S" for i in identifiers):
        assert linking_identifiers(patient, "S") != linking_identifiers(
            {"resourceType": "Patient", "identifier": dropped}, "S")
