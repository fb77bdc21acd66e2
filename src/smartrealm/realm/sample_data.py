"""Deterministic synthetic data for the realm's servers, by each server's ``profile``.

Same input, same output: every choice comes from ``random.Random`` seeded per (profile,
patient), and every date is counted back from a fixed day, never from the wall clock.

Ids (CONTRACT.md "Sample data ids"): patient n (1..realm.sample_patients) is ``p{n:04d}`` on
an EHR server; for n <= 6 that id is the same on every server, otherwise the imaging server
says ``img{n:04d}`` and the lab server ``lab{n:04d}``. Every Patient everywhere carries the
identifier ``{realm.patient_identifier_system}|MRN{n:06d}``, which links one person's
records across servers (the AS resolves per-server ids by it)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from smartrealm.realm.config import RealmConfig
from smartrealm.realm.sample_codes import (
    ACT_CODE,
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    CONDITIONS_ACUTE,
    CONDITIONS_CHRONIC,
    DIAGNOSTIC_SERVICE,
    DICOM_DCM,
    FAMILY,
    FIXED_PEOPLE,
    GIVEN_FEMALE,
    GIVEN_MALE,
    IMAGING_PROCEDURES,
    LAB_PANELS,
    LOINC,
    NPI,
    OBS_CATEGORY,
    PRACTITIONERS,
    SNOMED,
    UCUM,
    VITALS,
    LabTest,
)
from smartrealm.realm.sample_records import clinical_records

Resource = dict[str, Any]
SAME_ID_UP_TO = 6
ANCHOR = date(2025, 6, 2)  # "today" of the synthetic world
ID_PREFIX = {"ehr": "p", "imaging": "img", "lab": "lab"}

@dataclass(frozen=True)
class Person:
    n: int
    given: str
    family: str
    gender: str
    birth_date: date


def generate_realm_data(realm: RealmConfig) -> dict[str, list[Resource]]:
    """Resources for every resource server of the realm, keyed by server id."""
    people = [person(n) for n in range(1, realm.sample_patients + 1)]
    return {rs.id: _GENERATORS[rs.profile](realm, people) for rs in realm.resource_servers}


def patient_id(profile: str, n: int) -> str:
    """The id of sample patient ``n`` on a server with ``profile``."""
    prefix = "p" if n <= SAME_ID_UP_TO else ID_PREFIX[profile]
    return f"{prefix}{n:04d}"


def mrn(n: int) -> str:
    return f"MRN{n:06d}"


def person(n: int) -> Person:
    rng = random.Random(f"person:{n}")
    gender = rng.choice(("female", "male"))
    given = rng.choice(GIVEN_FEMALE if gender == "female" else GIVEN_MALE)
    family = rng.choice(FAMILY)
    if n in FIXED_PEOPLE:
        given, family, gender = FIXED_PEOPLE[n]
    birth = ANCHOR - timedelta(days=rng.randint(18 * 365, 90 * 365))
    return Person(n, given, family, gender, birth)


# --------------------------------------------------------------------------- building blocks


def _ref(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [_coding(system, code, display)], "text": display}


def _instant(day: date, hour: int, minute: int = 0) -> str:
    return datetime.combine(day, time(hour, minute)).isoformat() + "+00:00"


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def patient_resource(realm: RealmConfig, who: Person, profile: str) -> Resource:
    return {
        "resourceType": "Patient",
        "id": patient_id(profile, who.n),
        "identifier": [{
            "use": "usual",
            "type": _concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MR",
                             "Medical record number"),
            "system": realm.patient_identifier_system,
            "value": mrn(who.n),
        }],
        "active": True,
        "name": [{"use": "official", "family": who.family, "given": [who.given],
                  "text": f"{who.given} {who.family}"}],
        "gender": who.gender,
        "birthDate": who.birth_date.isoformat(),
    }


def _observation(oid: str, pid: str, category: str, test: LabTest | tuple[str, str],
                 when: str, value: float, unit: str) -> Resource:
    code, display = (test.code, test.display) if isinstance(test, LabTest) else test
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [_concept(OBS_CATEGORY, category,
                              "Vital Signs" if category == "vital-signs" else "Laboratory")],
        "code": _concept(LOINC, code, display),
        "subject": _ref("Patient", pid),
        "effectiveDateTime": when,
        "issued": when,
        "valueQuantity": _quantity(value, unit),
    }


def _lab_results(rng: random.Random, pid: str, prefix: str, day: date,
                 panel: tuple[LabTest, ...]) -> list[Resource]:
    when = _instant(day, 8, 15)
    results = []
    for index, test in enumerate(panel, start=1):
        value = round(rng.uniform(test.low * 0.85, test.high * 1.15), test.decimals)
        obs = _observation(f"{prefix}-{index}", pid, "laboratory", test, when, value, test.unit)
        obs["referenceRange"] = [{"low": _quantity(test.low, test.unit),
                                  "high": _quantity(test.high, test.unit)}]
        results.append(obs)
    return results


def _lab_report(rid: str, pid: str, panel_code: tuple[str, str], day: date,
                results: list[Resource]) -> Resource:
    return {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "status": "final",
        "category": [_concept(DIAGNOSTIC_SERVICE, "LAB", "Laboratory")],
        "code": _concept(LOINC, *panel_code),
        "subject": _ref("Patient", pid),
        "effectiveDateTime": _instant(day, 8, 15),
        "issued": _instant(day, 11, 0),
        "result": [_ref("Observation", r["id"]) for r in results],
    }


def _labs(rng: random.Random, pid: str, tag: str, days: list[date]) -> list[Resource]:
    """One lab panel (results + report) per day, cycling through the panels."""
    out: list[Resource] = []
    for k, day in enumerate(days, start=1):
        panel_code, tests = LAB_PANELS[(k - 1) % len(LAB_PANELS)]
        results = _lab_results(rng, pid, f"{tag}-{pid}-{k}", day, tests)
        out += [*results, _lab_report(f"{tag}r-{pid}-{k}", pid, panel_code, day, results)]
    return out


# --------------------------------------------------------------------------- EHR


def practitioners() -> list[Resource]:
    return [{
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"system": NPI, "value": f"99900000{i:02d}"}],
        "active": True,
        "name": [{"family": family, "given": [given], "prefix": ["Dr."],
                  "text": f"Dr. {given} {family}"}],
    } for i, (pid, given, family) in enumerate(PRACTITIONERS, start=1)]


def _encounter(eid: str, pid: str, practitioner: str, day: date) -> Resource:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": _coding(ACT_CODE, "AMB", "ambulatory"),
        "type": [_concept(SNOMED, "185349003", "Encounter for check up")],
        "subject": _ref("Patient", pid),
        "participant": [{"individual": _ref("Practitioner", practitioner)}],
        "period": {"start": _instant(day, 9), "end": _instant(day, 9, 30)},
    }


def _vitals(rng: random.Random, pid: str, eid: str, day: date) -> list[Resource]:
    """One visit's vital signs: each patient has a baseline of their own and a visit
    varies a little around it (a weight does not swing 40 kg in a year). ``rng`` draws
    exactly as many numbers as ever, so every other generated value stays the same."""
    when = _instant(day, 9, 5)
    baseline = random.Random(f"vitals:{pid}")
    out = []
    for key, (code, display, unit, low, high) in VITALS.items():
        value = _near(baseline.uniform(low, high), rng.uniform(low, high), low, high)
        obs = _observation(f"{eid}-{key}", pid, "vital-signs", (code, display), when,
                           round(value, 1), unit)
        obs["encounter"] = _ref("Encounter", eid)
        out.append(obs)
    systolic = round(_near(baseline.uniform(110, 145), rng.randint(105, 150), 105, 150))
    diastolic = round(_near(baseline.uniform(68, 92), rng.randint(65, 95), 65, 95))
    bp = _observation(f"{eid}-bp", pid, "vital-signs", ("85354-9", "Blood pressure panel"),
                      when, 0, "mm[Hg]")
    del bp["valueQuantity"]  # a panel: the values are components
    bp["encounter"] = _ref("Encounter", eid)
    bp["component"] = [
        {"code": _concept(LOINC, "8480-6", "Systolic blood pressure"),
         "valueQuantity": _quantity(systolic, "mm[Hg]")},
        {"code": _concept(LOINC, "8462-4", "Diastolic blood pressure"),
         "valueQuantity": _quantity(diastolic, "mm[Hg]")},
    ]
    return [*out, bp]


def _near(centre: float, draw: float, low: float, high: float) -> float:
    """``centre`` moved by at most 8 % of the range, as far as ``draw`` (uniform over
    low..high) says; kept within low..high."""
    shift = (draw - (low + high) / 2) / (high - low) * 0.16 * (high - low)
    return min(high, max(low, centre + shift))


def _condition(cid: str, pid: str, code: tuple[str, str], category: str, onset: date,
               encounter: str | None) -> Resource:
    labels = {"problem-list-item": "Problem List Item",
              "encounter-diagnosis": "Encounter Diagnosis"}
    resolved = encounter is not None
    condition: Resource = {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": _concept(CONDITION_CLINICAL, "resolved" if resolved else "active",
                                   "Resolved" if resolved else "Active"),
        "verificationStatus": _concept(CONDITION_VERIFICATION, "confirmed", "Confirmed"),
        "category": [_concept(CONDITION_CATEGORY, category, labels[category])],
        "code": _concept(SNOMED, *code),
        "subject": _ref("Patient", pid),
        "onsetDateTime": _instant(onset, 9),
        "recordedDate": _instant(onset, 9, 30),
    }
    if encounter is not None:
        condition["encounter"] = _ref("Encounter", encounter)
    return condition


def _ehr_patient(realm: RealmConfig, who: Person) -> list[Resource]:
    rng = random.Random(f"ehr:{who.n}")
    pid = patient_id("ehr", who.n)
    patient = patient_resource(realm, who, "ehr")
    doctor = PRACTITIONERS[(who.n - 1) % len(PRACTITIONERS)][0]
    patient["generalPractitioner"] = [_ref("Practitioner", doctor)]
    days = sorted(ANCHOR - timedelta(days=rng.randint(7, 120) + 150 * k) for k in range(3))
    out: list[Resource] = [patient]
    for k, day in enumerate(days, start=1):
        eid = f"enc-{pid}-{k}"
        out += [_encounter(eid, pid, doctor, day), *_vitals(rng, pid, eid, day)]
    chronic = rng.choice(CONDITIONS_CHRONIC)
    out.append(_condition(f"cond-{pid}-1", pid, chronic, "problem-list-item",
                          days[0] - timedelta(days=rng.randint(200, 2000)), None))
    acute = rng.choice(CONDITIONS_ACUTE)
    out.append(_condition(f"cond-{pid}-2", pid, acute, "encounter-diagnosis", days[-1],
                          f"enc-{pid}-{len(days)}"))
    out += _labs(rng, pid, "lab", [days[-1]])
    # Medications, allergy, procedures, notes: their own random stream (sample_records.py).
    return out + clinical_records(who.n, pid, doctor, days, [chronic, acute])


def _ehr(realm: RealmConfig, people: list[Person]) -> list[Resource]:
    out = practitioners()
    for who in people:
        out += _ehr_patient(realm, who)
    return out


# --------------------------------------------------------------------------- imaging


def _dicom_uid(rng: random.Random) -> str:
    # 2.25.<128-bit integer>: a DICOM UID derived from a UUID (PS3.5 §B.2).
    return f"2.25.{rng.getrandbits(127)}"


def _imaging_pair(rng: random.Random, pid: str, k: int, day: date) -> list[Resource]:
    modality, body_site, (code, display), conclusion = rng.choice(IMAGING_PROCEDURES)
    modality_coding = _coding(DICOM_DCM, *modality)
    study_id, report_id = f"is-{pid}-{k}", f"img-dr-{pid}-{k}"
    instances = rng.randint(1, 3) * (60 if modality[0] in ("CT", "MR") else 2)
    study: Resource = {
        "resourceType": "ImagingStudy",
        "id": study_id,
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{_dicom_uid(rng)}"}],
        "status": "available",
        "modality": [modality_coding],
        "subject": _ref("Patient", pid),
        "started": _instant(day, 10),
        "numberOfSeries": 1,
        "numberOfInstances": instances,
        "description": display,
        "procedureCode": [_concept(LOINC, code, display)],
        "series": [{"uid": _dicom_uid(rng), "number": 1, "modality": modality_coding,
                    "description": display, "numberOfInstances": instances,
                    "bodySite": _coding(SNOMED, *body_site)}],
    }
    report: Resource = {
        "resourceType": "DiagnosticReport",
        "id": report_id,
        "status": "final",
        "category": [{"coding": [_coding(LOINC, "LP29684-5", "Radiology"),
                                 _coding(DIAGNOSTIC_SERVICE, "RAD", "Radiology")],
                      "text": "Radiology"}],
        "code": _concept(LOINC, code, display),
        "subject": _ref("Patient", pid),
        "effectiveDateTime": _instant(day, 10),
        "issued": _instant(day, 15),
        "imagingStudy": [_ref("ImagingStudy", study_id)],
        "conclusion": conclusion,
    }
    return [study, report]


def _imaging(realm: RealmConfig, people: list[Person]) -> list[Resource]:
    out: list[Resource] = []
    for who in people:
        rng = random.Random(f"imaging:{who.n}")
        pid = patient_id("imaging", who.n)
        out.append(patient_resource(realm, who, "imaging"))
        for k in range(1, rng.randint(1, 2) + 1):
            out += _imaging_pair(rng, pid, k, ANCHOR - timedelta(days=rng.randint(10, 700)))
    return out


# --------------------------------------------------------------------------- lab


def _lab(realm: RealmConfig, people: list[Person]) -> list[Resource]:
    out: list[Resource] = []
    for who in people:
        rng = random.Random(f"lab:{who.n}")
        pid = patient_id("lab", who.n)
        days = sorted(ANCHOR - timedelta(days=rng.randint(5, 90) + 120 * k) for k in range(2))
        out += [patient_resource(realm, who, "lab"), *_labs(rng, pid, "lo", days)]
    return out


def _empty(_realm: RealmConfig, _people: list[Person]) -> list[Resource]:
    return []


_GENERATORS: dict[str, Callable[[RealmConfig, list[Person]], list[Resource]]] = {
    "ehr": _ehr, "imaging": _imaging, "lab": _lab, "empty": _empty,
}


def generate_server_data(realm: RealmConfig, profile: str,
                         numbers: Iterable[int]) -> list[Resource]:
    """The resources of sample patients ``numbers`` on a server with ``profile``, plus the
    profile's shared ones (practitioners): `smartrealm generate` writes datasets far larger
    than memory in chunks through this, dropping the repeated shared resources."""
    return _GENERATORS[profile](realm, [person(n) for n in numbers])
