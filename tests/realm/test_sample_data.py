"""The synthetic realm data: deterministic, valid R4, ids and MRN links per CONTRACT.md."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from smartrealm.fhir.search.indexing import parse_local_reference, walk
from smartrealm.realm.config import RealmConfig, ResourceServerConfig, load_config
from smartrealm.realm.sample_data import generate_realm_data, mrn, patient_id

OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


@pytest.fixture(scope="module")
def realm() -> RealmConfig:
    return load_config()


@pytest.fixture(scope="module")
def data(realm: RealmConfig) -> dict[str, list[dict[str, Any]]]:
    return generate_realm_data(realm)


def of_type(resources: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == resource_type]


def codes(concept: dict[str, Any]) -> set[str]:
    return {c["code"] for c in concept.get("coding", [])}


def test_deterministic(realm: RealmConfig, data: dict[str, list[dict[str, Any]]]) -> None:
    again = generate_realm_data(realm)
    assert json.dumps(again, sort_keys=True) == json.dumps(data, sort_keys=True)


def test_every_resource_is_valid_r4(data: dict[str, list[dict[str, Any]]]) -> None:
    for resources in data.values():
        for resource in resources:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_ids_are_unique_and_references_resolve_locally(
        data: dict[str, list[dict[str, Any]]]) -> None:
    for server, resources in data.items():
        keys = [(r["resourceType"], r["id"]) for r in resources]
        assert len(keys) == len(set(keys)), server
        known = set(keys)
        for resource in resources:
            for ref in _references(resource):
                assert parse_local_reference(ref) in known, (server, resource["id"], ref)


def _references(node: Any) -> list[str]:
    if isinstance(node, list):
        return [ref for item in node for ref in _references(item)]
    if not isinstance(node, dict):
        return []
    own = [node["reference"]] if isinstance(node.get("reference"), str) else []
    return own + [ref for value in node.values() for ref in _references(value)]


def test_patient_id_rules(realm: RealmConfig, data: dict[str, list[dict[str, Any]]]) -> None:
    n = realm.sample_patients
    assert [p["id"] for p in of_type(data["ehr"], "Patient")] == \
        [f"p{i:04d}" for i in range(1, n + 1)]
    assert [p["id"] for p in of_type(data["imaging"], "Patient")] == \
        [f"p{i:04d}" for i in range(1, 7)] + [f"img{i:04d}" for i in range(7, n + 1)]
    assert [p["id"] for p in of_type(data["lab"], "Patient")] == \
        [f"p{i:04d}" for i in range(1, 7)] + [f"lab{i:04d}" for i in range(7, n + 1)]
    assert patient_id("imaging", 12) == "img0012" and patient_id("lab", 6) == "p0006"


def test_mrn_links_the_same_person_across_servers(
        realm: RealmConfig, data: dict[str, list[dict[str, Any]]]) -> None:
    people: dict[str, list[tuple[str, str, str]]] = {}
    for server in ("ehr", "imaging", "lab"):
        profile = realm.server(server).profile
        for n in range(1, realm.sample_patients + 1):
            matches = [p for p in of_type(data[server], "Patient")
                       if {"system": realm.patient_identifier_system, "value": mrn(n)}
                       in [{"system": i["system"], "value": i["value"]}
                           for i in p["identifier"]]]
            assert [p["id"] for p in matches] == [patient_id(profile, n)]
            patient = matches[0]
            people.setdefault(mrn(n), []).append(
                (patient["name"][0]["text"], patient["birthDate"], patient["gender"]))
    for mrn_value, demographics in people.items():
        assert len(set(demographics)) == 1, mrn_value  # one person, same demographics
    assert people["MRN000012"][0][0] == "Pat Example"  # the default realm's patient user


def test_ehr_content(data: dict[str, list[dict[str, Any]]]) -> None:
    ehr = data["ehr"]
    assert "pr0001" in {p["id"] for p in of_type(ehr, "Practitioner")}
    vitals = [o for o in of_type(ehr, "Observation")
              if "vital-signs" in codes(o["category"][0])]
    loinc = Counter(next(iter(codes(o["code"]))) for o in vitals)
    assert set(loinc) == {"8867-4", "85354-9", "29463-7", "8310-5"}
    assert min(loinc.values()) >= 3 * 24  # several over time for every patient
    p1_hr = sorted(o["effectiveDateTime"] for o in vitals
                   if o["subject"]["reference"] == "Patient/p0001" and "8867-4" in codes(o["code"]))
    assert len(set(p1_hr)) == 3
    bp = next(o for o in vitals if "85354-9" in codes(o["code"]))
    assert {next(iter(codes(c["code"]))) for c in bp["component"]} == {"8480-6", "8462-4"}
    labs = [o for o in of_type(ehr, "Observation") if "laboratory" in codes(o["category"][0])]
    assert labs and all(o["category"][0]["coding"][0]["system"] == OBS_CATEGORY for o in labs)
    categories = {c for cond in of_type(ehr, "Condition") for c in codes(cond["category"][0])}
    assert categories == {"problem-list-item", "encounter-diagnosis"}
    assert len(of_type(ehr, "Encounter")) == 3 * 24


def test_imaging_content(data: dict[str, list[dict[str, Any]]]) -> None:
    imaging = data["imaging"]
    studies, reports = of_type(imaging, "ImagingStudy"), of_type(imaging, "DiagnosticReport")
    patients = {f"Patient/{p['id']}" for p in of_type(imaging, "Patient")}
    assert {s["subject"]["reference"] for s in studies} == patients
    assert len(reports) == len(studies)
    for report in reports:
        assert {"LP29684-5", "RAD"} <= codes(report["category"][0])
        assert report["code"]["coding"][0]["system"] == "http://loinc.org"
    assert all(s["modality"] and s["series"] and s["started"] for s in studies)
    assert set(walk(imaging, ("resourceType",))) == {"Patient", "ImagingStudy",
                                                      "DiagnosticReport"}


def test_lab_content(data: dict[str, list[dict[str, Any]]]) -> None:
    lab = data["lab"]
    observations = of_type(lab, "Observation")
    assert all("laboratory" in codes(o["category"][0]) for o in observations)
    reports = of_type(lab, "DiagnosticReport")
    assert reports and all("LAB" in codes(r["category"][0]) for r in reports)
    assert len(reports) == 2 * 24


def test_empty_profile_and_small_realm(realm: RealmConfig) -> None:
    servers = (*realm.resource_servers,
               ResourceServerConfig(id="spare", name="Spare", base_url="http://127.0.0.1:8709/fhir"))
    small = replace(realm, sample_patients=3, resource_servers=servers)
    data = generate_realm_data(small)
    assert data["spare"] == []
    for server in ("ehr", "imaging", "lab"):
        assert [p["id"] for p in of_type(data[server], "Patient")] == ["p0001", "p0002", "p0003"]
