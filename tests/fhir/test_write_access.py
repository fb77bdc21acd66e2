"""SMART enforcement of the write side (spec §5.1, §5.3; fhir/access.py "Writes").

The matrix: scope context (patient/user/system) × the letter granted (c r u d s) × the
interaction attempted (create, read, update, delete, search) × the target inside or outside
the token patient's compartment × no / matching / mismatching granular constraint. Every
case outside the grant is refused (and changes nothing); every case inside it is allowed."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.fhir import proxy_target
from tests.fhir.conftest import Realm
from tests.fhir.restkit import LAB, LAB_SYSTEM, VITALS, call, observation, patient, unique
from tests.guard.tokens import details_entry

# The proxy target's fixtures (tests/fhir/proxy_target.py).
proxy_app = proxy_target.proxy_app
proxy_rs = proxy_target.proxy_rs

ME, OTHER = "p0001", "p0002"
ADMIN = "user/*.cruds"
CASES = list(itertools.product(("patient", "user", "system"), "cruds", "cruds",
                               ("in", "out"), ("none", "match", "mismatch")))


def _allowed(context: str, granted: str, attempted: str, target: str, granular: str) -> bool:
    return (attempted == granted and (context != "patient" or target == "in")
            and granular != "mismatch")


def _scope(context: str, letter: str, granular: str) -> str:
    return f"{context}/Observation.{letter}" + (f"?category={LAB}" if granular != "none"
                                                else "")


def _target(target: str, granular: str, resource_id: str | None = None) -> dict[str, Any]:
    category = "vital-signs" if granular == "mismatch" else "laboratory"
    return observation(ME if target == "in" else OTHER, category, resource_id=resource_id)


async def _total(rs: Realm, admin: str) -> int:
    response = await call(rs, "GET", "Observation?_count=0", admin)
    total: int = response.json()["total"]
    return total


@pytest.fixture(params=["direct", "proxy"])
def rs(request: pytest.FixtureRequest, rs: Realm, proxy_rs: Realm) -> Realm:
    """Every test here runs against the built-in server and, through a proxy-mode server,
    against the same server as its upstream (issue 4 "Proxy mode passes the same
    enforcement matrix"; tests/fhir/proxy_target.py)."""
    return proxy_rs if request.param == "proxy" else rs


def _proxied(rs: Realm) -> bool:
    return rs.config.server("ehr").mode == "proxy"


@pytest.mark.parametrize(("context", "granted", "attempted", "target", "granular"), CASES)
async def test_enforcement_matrix(rs: Realm, context: str, granted: str, attempted: str,
                                  target: str, granular: str) -> None:
    admin = rs.token(ADMIN)
    token = rs.token(_scope(context, granted, granular),
                     patient=ME if context == "patient" else None)
    allowed = _allowed(context, granted, attempted, target, granular)
    if attempted == "c":
        before = await _total(rs, admin)
        response = await call(rs, "POST", "Observation", token, body=_target(target, granular))
        assert response.status_code == (201 if allowed else 403), response.text
        assert await _total(rs, admin) == before + (1 if allowed else 0)
        return
    oid = unique("m")
    await call(rs, "PUT", f"Observation/{oid}", admin, body=_target(target, granular, oid))
    if attempted == "s":
        response = await call(rs, "GET", f"Observation?_id={oid}", token)
        if allowed:
            assert response.json()["total"] == 1
        else:  # refused outright, or confined so that nothing outside the grant shows
            assert response.status_code == 403 or response.json()["total"] == 0, response.text
        return
    if attempted == "r":
        response = await call(rs, "GET", f"Observation/{oid}", token)
        assert response.status_code == (200 if allowed else 403), response.text
        return
    if attempted == "u":
        changed = {**_target(target, granular, oid), "status": "amended"}
        response = await call(rs, "PUT", f"Observation/{oid}", token, body=changed)
        assert response.status_code == (200 if allowed else 403), response.text
    else:
        response = await call(rs, "DELETE", f"Observation/{oid}", token)
        assert response.status_code == (204 if allowed else 403), response.text
    stored = await call(rs, "GET", f"Observation/{oid}", admin)
    if not allowed:  # a refusal changes nothing
        assert stored.status_code == 200 and stored.json()["meta"]["versionId"] == "1"


# --------------------------------------------------------------------------- write rules


async def test_update_cannot_move_a_resource_out_of_the_compartment(rs: Realm) -> None:
    admin, mine = rs.token(ADMIN), rs.token("patient/Observation.ru", patient=ME)
    oid = unique("mv")
    await call(rs, "PUT", f"Observation/{oid}", admin, body=observation(ME, resource_id=oid))
    moved = await call(rs, "PUT", f"Observation/{oid}", mine,
                       body=observation(OTHER, resource_id=oid))
    assert moved.status_code == 403
    assert (await call(rs, "GET", f"Observation/{oid}", mine)).json()["subject"] == {
        "reference": f"Patient/{ME}"}


async def test_update_cannot_take_over_another_patients_resource(rs: Realm) -> None:
    admin, mine = rs.token(ADMIN), rs.token("patient/Observation.u", patient=ME)
    oid = unique("tk")
    await call(rs, "PUT", f"Observation/{oid}", admin, body=observation(OTHER, resource_id=oid))
    taken = await call(rs, "PUT", f"Observation/{oid}", mine,
                       body=observation(ME, resource_id=oid))
    assert taken.status_code == 403
    stored = await call(rs, "GET", f"Observation/{oid}", admin)
    assert stored.json()["subject"]["reference"] == f"Patient/{OTHER}"


async def test_granular_update_cannot_change_the_category_away(rs: Realm) -> None:
    admin = rs.token(ADMIN)
    lab = rs.token(f"user/Observation.u?category={LAB}")
    oid = unique("cat")
    await call(rs, "PUT", f"Observation/{oid}", admin, body=observation(ME, resource_id=oid))
    away = await call(rs, "PUT", f"Observation/{oid}", lab,
                      body=observation(ME, "vital-signs", resource_id=oid))
    assert away.status_code == 403
    same = await call(rs, "PUT", f"Observation/{oid}", lab,
                      body=observation(ME, resource_id=oid, status="amended"))
    assert same.status_code == 200


async def test_granular_scopes_combine_as_a_union(rs: Realm) -> None:
    token = rs.token(f"patient/Observation.c?category={LAB} "
                     f"patient/Observation.c?category={VITALS}", patient=ME)
    for category, status in (("laboratory", 201), ("vital-signs", 201),
                             ("social-history", 403)):
        response = await call(rs, "POST", "Observation", token,
                              body=observation(ME, category))
        assert response.status_code == status, category


async def test_patient_scope_writes_only_the_patient_itself(rs: Realm) -> None:
    admin = rs.token(ADMIN)
    own_id = unique("pt")
    await call(rs, "PUT", f"Patient/{own_id}", admin, body=patient(own_id))
    mine = rs.token("patient/Patient.crud", patient=own_id)
    assert (await call(rs, "POST", "Patient", mine, body=patient())).status_code == 403
    assert (await call(rs, "PUT", f"Patient/{own_id}", mine,
                       body=patient(own_id, "Renamed"))).status_code == 200
    assert (await call(rs, "PUT", f"Patient/{OTHER}", mine,
                       body=patient(OTHER))).status_code == 403
    stranger = unique("pt")
    assert (await call(rs, "PUT", f"Patient/{stranger}", mine,
                       body=patient(stranger))).status_code == 403
    assert (await call(rs, "GET", f"Patient/{stranger}", admin)).status_code == 404
    assert (await call(rs, "DELETE", f"Patient/{OTHER}", mine)).status_code == 403
    assert (await call(rs, "DELETE", f"Patient/{own_id}", mine)).status_code == 204


async def test_patient_scope_cannot_write_outside_the_compartment(rs: Realm) -> None:
    practitioner = {"resourceType": "Practitioner", "name": [{"family": "Who"}]}
    mine = rs.token("patient/Practitioner.cruds", patient=ME)
    assert (await call(rs, "POST", "Practitioner", mine, body=practitioner)).status_code == 403
    assert (await call(rs, "PUT", "Practitioner/pr0001", mine,
                       body={**practitioner, "id": "pr0001"})).status_code == 403
    assert (await call(rs, "DELETE", "Practitioner/pr0001", mine)).status_code == 403
    assert (await call(rs, "GET", "Practitioner/pr0001", mine)).status_code == 200
    staff = rs.token("user/Practitioner.c")
    assert (await call(rs, "POST", "Practitioner", staff, body=practitioner)).status_code == 201


async def test_patient_scope_without_a_patient_writes_nothing(rs: Realm) -> None:
    token = rs.token("patient/Observation.cruds")
    assert (await call(rs, "POST", "Observation", token,
                       body=observation(ME))).status_code == 403


async def test_u_covers_upsert_and_c_does_not(rs: Realm) -> None:
    upsert = rs.token("patient/Observation.u", patient=ME)
    oid = unique("up")
    assert (await call(rs, "PUT", f"Observation/{oid}", upsert,
                       body=observation(ME, resource_id=oid))).status_code == 201
    create_only = rs.token("patient/Observation.c", patient=ME)
    other = unique("up")
    assert (await call(rs, "PUT", f"Observation/{other}", create_only,
                       body=observation(ME, resource_id=other))).status_code == 403


async def test_v1_scopes(rs: Realm) -> None:
    write = rs.token("patient/Observation.write", patient=ME)
    created = await call(rs, "POST", "Observation", write, body=observation(ME))
    assert created.status_code == 201
    oid = created.json()["id"]
    assert (await call(rs, "GET", f"Observation/{oid}", write)).status_code == 403
    read = rs.token("patient/Observation.read", patient=ME)
    assert (await call(rs, "GET", f"Observation/{oid}", read)).status_code == 200
    assert (await call(rs, "POST", "Observation", read, body=observation(ME))).status_code == 403


async def test_absolute_references_do_not_place_in_the_compartment(rs: Realm) -> None:
    """Only ``Patient/<id>`` proves the compartment; an absolute URL (even to this server)
    is refused rather than guessed at."""
    mine = rs.token("patient/Observation.c", patient=ME)
    absolute = observation(ME) | {"subject": {"reference": f"{rs.ehr}/Patient/{ME}"}}
    assert (await call(rs, "POST", "Observation", mine, body=absolute)).status_code == 403


async def test_only_this_servers_share_of_the_grant_counts(rs: Realm) -> None:
    """The top-level scope is the union over servers; the EHR's own entry grants reads."""
    base = rs.ehr
    token = rs.auth.mint([base], "patient/Observation.cruds", details=[
        details_entry(base, "patient/Observation.rs", ME)])
    assert (await call(rs, "POST", "Observation", token, body=observation(ME))).status_code \
        == 403
    imaging_only = rs.token("system/*.cruds", server="imaging")
    assert (await call(rs, "POST", "Observation", imaging_only,
                       body=observation(ME))).status_code == 401


async def test_each_bundle_entry_is_checked_on_its_own(rs: Realm) -> None:
    mine = rs.token("patient/Observation.cruds", patient=ME)
    admin = rs.token(ADMIN)
    keep = unique("tx")
    entries = [
        {"request": {"method": "PUT", "url": f"Observation/{keep}"},
         "resource": observation(ME, resource_id=keep)},
        {"request": {"method": "POST", "url": "Observation"}, "resource": observation(OTHER)},
    ]
    if _proxied(rs):  # the proxy refuses Bundles outright (fhir/proxy/screen.py)
        for kind in ("transaction", "batch"):
            refused = await call(rs, "POST", "", mine, body={
                "resourceType": "Bundle", "type": kind, "entry": entries})
            assert refused.status_code == 400
            assert refused.json()["issue"][0]["code"] == "not-supported"
        assert (await call(rs, "GET", f"Observation/{keep}", admin)).status_code == 404
        return
    transaction = await call(rs, "POST", "", mine, body={"resourceType": "Bundle",
                                                         "type": "transaction",
                                                         "entry": entries})
    assert transaction.status_code == 403
    assert transaction.json()["issue"][0]["expression"] == ["Bundle.entry[1]"]
    assert (await call(rs, "GET", f"Observation/{keep}", admin)).status_code == 404
    batch = await call(rs, "POST", "", mine, body={"resourceType": "Bundle", "type": "batch",
                                                   "entry": entries})
    assert [e["response"]["status"] for e in batch.json()["entry"]] == [
        "201 Created", "403 Forbidden"]
    assert (await call(rs, "GET", f"Observation/{keep}", admin)).status_code == 200


def test_the_matrix_is_complete() -> None:
    assert len(CASES) == 3 * 5 * 5 * 2 * 3
    assert sum(_allowed(*case) for case in CASES) == 50  # user 20 + system 20 + patient 10
    assert LAB_SYSTEM in LAB
