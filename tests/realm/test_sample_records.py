"""The EHR's medication orders, allergies, procedures and notes (realm/sample_records.py):
per-patient counts, codes, links, and that the older sample resources did not change."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from smartrealm.cli.fhir_data import stream_dataset
from smartrealm.core.profiles import supported_types
from smartrealm.realm.config import RealmConfig, load_config
from smartrealm.realm.sample_data import generate_realm_data

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NEW_TYPES = ("MedicationRequest", "AllergyIntolerance", "Procedure", "DocumentReference")


@pytest.fixture(scope="module")
def realm() -> RealmConfig:
    return load_config()


@pytest.fixture(scope="module")
def ehr(realm: RealmConfig) -> list[dict[str, Any]]:
    return generate_realm_data(realm)["ehr"]


def of_patient(resources: list[dict[str, Any]], pid: str) -> Counter[str]:
    ref = f"Patient/{pid}"
    return Counter(r["resourceType"] for r in resources
                   if r.get("subject", r.get("patient", {})).get("reference") == ref)


def test_every_patient_has_records_of_each_new_type(ehr: list[dict[str, Any]]) -> None:
    assert all(t in supported_types("ehr") for t in NEW_TYPES)
    for n in range(1, 25):
        counts = of_patient(ehr, f"p{n:04d}")
        assert [counts[t] for t in NEW_TYPES] == [2, 1, 3, 3], n


def test_existing_records_are_unchanged(ehr: list[dict[str, Any]]) -> None:
    counts = of_patient(ehr, "p0012")
    assert (counts["Encounter"], counts["Condition"], counts["Observation"],
            counts["DiagnosticReport"]) == (3, 2, 15, 1)
    vitals = [r for r in ehr if r["resourceType"] == "Observation"
              and r["subject"]["reference"] == "Patient/p0012"
              and r["category"][0]["coding"][0]["code"] == "vital-signs"]
    assert len(vitals) == 12
    assert Counter(r["resourceType"] for r in ehr)["Observation"] == 360


def test_p0012_records(ehr: list[dict[str, Any]]) -> None:
    by_id = {r["id"]: r for r in ehr}
    chronic = by_id["medrx-p0012-1"]
    assert chronic["medicationCodeableConcept"]["coding"][0] == {
        "system": RXNORM, "code": "314076", "display": "lisinopril 10 MG Oral Tablet"}
    assert (chronic["status"], chronic["intent"]) == ("active", "order")
    assert chronic["reasonReference"] == [{"reference": "Condition/cond-p0012-1"}]
    assert by_id["cond-p0012-1"]["code"]["coding"][0]["code"] == "38341003"
    assert by_id["medrx-p0012-2"]["status"] == "completed"
    allergy = by_id["allergy-p0012-1"]
    assert allergy["code"]["coding"][0]["code"] == "418689008"
    assert allergy["patient"] == {"reference": "Patient/p0012"}
    note = by_id["note-p0012-1"]
    assert note["type"]["coding"][0] == {"system": "http://loinc.org", "code": "11506-3",
                                         "display": "Progress note"}
    assert note["context"]["encounter"] == [{"reference": "Encounter/enc-p0012-1"}]
    assert by_id["proc-p0012-3"]["encounter"] == {"reference": "Encounter/enc-p0012-3"}


def test_generate_streams_the_new_types(realm: RealmConfig) -> None:
    # `smartrealm generate` goes through stream_dataset, chunk by chunk.
    streamed = list(stream_dataset(realm, "ehr", 3, lambda _n: None))
    counts = Counter(r["resourceType"] for r in streamed)
    assert [counts[t] for t in NEW_TYPES] == [6, 3, 9, 9]
    assert counts["Practitioner"] == 4 and counts["Patient"] == 3
