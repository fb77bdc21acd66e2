"""The realm's patient index (authz/patient_index.py): the AS finds the in-context patient on
the other servers of the audience there and nowhere else — not by the MRN the home server's
Patient says at authorization time, which a patient-facing app might have rewritten."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from smartrealm.authz.patient_index import (
    PatientLink,
    linking_value,
    links_from,
    seed_sample_links,
)
from smartrealm.authz.stores.sql_patient_index import SqlPatientIndex
from smartrealm.oauth.keys import KeyRing
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from tests.authz.conftest import Flow, authorize_code, exchange
from tests.authz.fhir_stub import FhirStub

SCOPE = ("launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs "
         "patient/ImagingStudy.rs")


class RewritableStub(FhirStub):
    """The stub, with some records' MRN changed (``rewritten[(server, id)] = MRN``), as if
    someone had rewritten the Patient on that server."""

    def __init__(self, realm: RealmConfig, keys: KeyRing) -> None:
        super().__init__(realm, keys)
        self.rewritten: dict[tuple[str, str], str] = {}

    def _patients(self, server_id: str) -> list[dict[str, Any]]:
        found = super()._patients(server_id)
        for p in found:
            if (server_id, p["id"]) in self.rewritten:
                p["identifier"] = [{"system": self.realm.patient_identifier_system,
                                    "value": self.rewritten[(server_id, p["id"])]}]
        return found


@pytest.fixture
def stub(realm: RealmConfig, keys: KeyRing) -> RewritableStub:
    return RewritableStub(realm, keys)


def _index(realm: RealmConfig) -> SqlPatientIndex:
    return SqlPatientIndex(make_engine(realm.database_url_for(None)))


async def _patients(ua: httpx.AsyncClient, realm: RealmConfig) -> dict[str, str | None]:
    """Each server's patient in a fresh patient token for ehr, imaging and lab."""
    flow = Flow(realm, resources=("ehr", "imaging", "lab"), scope=SCOPE)
    response = await exchange(ua, flow, await authorize_code(ua, flow))
    assert response.status_code == 200, response.text
    body = response.json()
    # What the resource servers enforce: the signed token's authorization_details.
    keys = KeySet.import_key_set((await ua.get("/jwks")).json())
    claims = jwt.decode(body["access_token"], keys).claims
    by_base = {d["locations"][0]: d.get("patient") for d in claims["authorization_details"]}
    return {rs.id: by_base[rs.base_url] for rs in realm.resource_servers}


async def test_a_rewritten_mrn_on_the_home_server_moves_no_link(
        ua: httpx.AsyncClient, realm: RealmConfig, stub: RewritableStub) -> None:
    """The attack: the patient's own Patient on the EHR now says another person's MRN
    (sequential, easy to guess). The token still carries the patient's own records."""
    assert await _patients(ua, realm) == {"ehr": "p0012", "imaging": "img0012",
                                          "lab": "lab0012"}
    stub.rewritten[("ehr", "p0012")] = "MRN000013"
    assert await _patients(ua, realm) == {"ehr": "p0012", "imaging": "img0012",
                                          "lab": "lab0012"}
    # Not even an MRN on the other servers is consulted: the index alone links.
    stub.rewritten[("imaging", "img0012")] = "MRN000099"
    assert (await _patients(ua, realm))["imaging"] == "img0012"


async def test_a_patient_without_an_index_entry_has_no_patient_elsewhere(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    """Fail closed: the home record must itself be linked."""
    assert _index(realm).unlink("ehr", "p0012")
    assert await _patients(ua, realm) == {"ehr": "p0012", "imaging": None, "lab": None}


async def test_an_operator_link_is_what_the_as_uses(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    index = _index(realm)
    index.link([PatientLink("lab", "lab0020", "MRN000012", "operator", 1)])
    index.unlink("lab", "lab0012")
    assert await _patients(ua, realm) == {"ehr": "p0012", "imaging": "img0012",
                                          "lab": "lab0020"}


async def test_two_records_of_one_person_on_a_server_link_neither(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    _index(realm).link([PatientLink("lab", "lab0020", "MRN000012", "operator", 1)])
    assert await _patients(ua, realm) == {"ehr": "p0012", "imaging": "img0012", "lab": None}


async def test_an_indexed_record_the_server_does_not_have_is_not_used(
        ua: httpx.AsyncClient, realm: RealmConfig, stub: RewritableStub) -> None:
    stub.missing["imaging"] = {12}
    assert await _patients(ua, realm) == {"ehr": "p0012", "imaging": None, "lab": "lab0012"}


# ------------------------------------------------------------------ seeding, reading records


def test_the_sample_patients_are_linked_once(realm: RealmConfig) -> None:
    index = _index(realm)
    seeded = seed_sample_links(realm, index, 5)
    assert seeded == 3 * realm.sample_patients  # ehr, imaging, lab
    assert [(k.server_id, k.patient_id, k.source) for k in index.records_of("MRN000012")] == [
        ("ehr", "p0012", "sample"), ("imaging", "img0012", "sample"), ("lab", "lab0012",
                                                                       "sample")]
    assert {k.patient_id for k in index.records_of("MRN000003")} == {"p0003"}
    index.unlink("lab", "lab0012")  # an operator's decision survives a restart
    assert seed_sample_links(realm, index, 6) == 0
    assert index.person_of("lab", "lab0012") is None


def test_a_proxy_in_front_of_a_sample_server_has_its_links(realm: RealmConfig) -> None:
    ehr = realm.server("ehr")
    proxies = (replace(ehr, id="ehr-proxy", mode="proxy", upstream=ehr.base_url + "/",
                       base_url="http://127.0.0.1:9/guarded/fhir"),
               replace(ehr, id="elsewhere", mode="proxy", upstream="https://ehr.example.org/fhir",
                       base_url="http://127.0.0.1:9/other/fhir"))
    index = _index(realm)
    seed_sample_links(replace(realm, resource_servers=(*realm.resource_servers, *proxies)),
                      index, 5)
    assert index.person_of("ehr-proxy", "p0012") == "MRN000012"
    assert index.count("ehr-proxy") == realm.sample_patients
    assert index.count("elsewhere") == 0  # another server's records are never guessed at


def test_a_realm_without_sample_data_links_nothing(realm: RealmConfig) -> None:
    assert seed_sample_links(replace(realm, sample_data=False), _index(realm), 5) == 0
    assert _index(realm).count() == 0


def test_links_from_reads_one_realm_identifier() -> None:
    system = "urn:mrn"

    def patient(pid: str, *values: str, other: str = "x") -> dict[str, Any]:
        return {"resourceType": "Patient", "id": pid, "identifier": [
            *({"system": system, "value": v} for v in values),
            {"system": "urn:other", "value": other}]}

    resources = [patient("a", "M1"), patient("b"), patient("c", "M2", "M3"),
                 patient("d", "M4", "M4"), {"resourceType": "Observation", "id": "e",
                                            "identifier": [{"system": system, "value": "M5"}]}]
    assert [(k.patient_id, k.person) for k in links_from(resources, "ehr", system, "load", 1)
            ] == [("a", "M1"), ("d", "M4")]
    assert linking_value(patient("f", ""), system) is None
