"""The EHR's clinical records beyond visits, vitals, problems and labs (sample_data.py):
medication orders, allergies, procedures and clinical notes for each sample patient.

They draw from their own ``random.Random`` (seeded per patient), so adding them left every
resource the EHR generated before — ids, values, counts — exactly as it was. Per patient:
a MedicationRequest for the chronic problem and one for the acute one (RxNorm), one
AllergyIntolerance (SNOMED CT), one Procedure and one DocumentReference (a LOINC-typed
progress note, the text inline as base64) per encounter."""

from __future__ import annotations

import base64
import random
from datetime import date, datetime, time, timedelta
from typing import Any

from smartrealm.realm.sample_codes import (
    ALLERGIES,
    ALLERGY_CLINICAL,
    ALLERGY_VERIFICATION,
    DOCUMENT_CATEGORY,
    DOCUMENT_TYPES,
    LOINC,
    MEDICATIONS,
    PROCEDURES,
    RXNORM,
    SNOMED,
)

Resource = dict[str, Any]


def _ref(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _instant(day: date, hour: int, minute: int = 0) -> str:
    return datetime.combine(day, time(hour, minute)).isoformat() + "+00:00"


def clinical_records(n: int, pid: str, doctor: str, visits: list[date],
                     problems: list[tuple[str, str]]) -> list[Resource]:
    """Patient ``n``'s records: ``visits`` are the encounter days (``enc-{pid}-{k}``,
    k from 1), ``problems`` the chronic then the acute condition (code, display), in the
    order sample_data.py writes them as ``cond-{pid}-1`` and ``cond-{pid}-2``."""
    rng = random.Random(f"ehr-records:{n}")
    out: list[Resource] = []
    for k, (code, _display) in enumerate(problems, start=1):
        chronic = k == 1
        day = visits[0] if chronic else visits[-1]
        encounter = f"enc-{pid}-{1 if chronic else len(visits)}"
        out.append(_medication_request(f"medrx-{pid}-{k}", pid, doctor, MEDICATIONS[code],
                                       day, encounter, f"cond-{pid}-{k}", chronic))
    out.append(_allergy(f"allergy-{pid}-1", pid, doctor, rng.choice(ALLERGIES),
                        visits[0] - timedelta(days=rng.randint(400, 3000))))
    for k, day in enumerate(visits, start=1):
        encounter = f"enc-{pid}-{k}"
        out.append(_procedure(f"proc-{pid}-{k}", pid, doctor, rng.choice(PROCEDURES), day,
                              encounter))
        out.append(_note(f"note-{pid}-{k}", pid, doctor, DOCUMENT_TYPES[(k - 1) %
                                                                       len(DOCUMENT_TYPES)],
                         day, encounter))
    return out


def _medication_request(mid: str, pid: str, doctor: str, drug: tuple[str, str, str],
                        day: date, encounter: str, condition: str,
                        chronic: bool) -> Resource:
    code, display, dose = drug
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": "active" if chronic else "completed",
        "intent": "order",
        "medicationCodeableConcept": _concept(RXNORM, code, display),
        "subject": _ref("Patient", pid),
        "encounter": _ref("Encounter", encounter),
        "authoredOn": _instant(day, 9, 25),
        "requester": _ref("Practitioner", doctor),
        "reasonReference": [_ref("Condition", condition)],
        "dosageInstruction": [{"sequence": 1, "text": dose}],
    }


def _allergy(aid: str, pid: str, doctor: str,
             allergy: tuple[str, str, str, str, tuple[str, str]], onset: date) -> Resource:
    code, display, category, criticality, reaction = allergy
    return {
        "resourceType": "AllergyIntolerance",
        "id": aid,
        "clinicalStatus": _concept(ALLERGY_CLINICAL, "active", "Active"),
        "verificationStatus": _concept(ALLERGY_VERIFICATION, "confirmed", "Confirmed"),
        "type": "allergy",
        "category": [category],
        "criticality": criticality,
        "code": _concept(SNOMED, code, display),
        "patient": _ref("Patient", pid),
        "onsetDateTime": _instant(onset, 12),
        "recordedDate": _instant(onset, 12, 30),
        "recorder": _ref("Practitioner", doctor),
        "reaction": [{"manifestation": [_concept(SNOMED, *reaction)]}],
    }


def _procedure(prid: str, pid: str, doctor: str, procedure: tuple[str, str], day: date,
               encounter: str) -> Resource:
    return {
        "resourceType": "Procedure",
        "id": prid,
        "status": "completed",
        "code": _concept(SNOMED, *procedure),
        "subject": _ref("Patient", pid),
        "encounter": _ref("Encounter", encounter),
        "performedPeriod": {"start": _instant(day, 9, 10), "end": _instant(day, 9, 20)},
        "performer": [{"actor": _ref("Practitioner", doctor)}],
    }


def _note(did: str, pid: str, doctor: str, kind: tuple[str, str], day: date,
          encounter: str) -> Resource:
    code, display = kind
    text = f"{display} for Patient/{pid}, visit of {day.isoformat()}. Seen by {doctor}."
    return {
        "resourceType": "DocumentReference",
        "id": did,
        "status": "current",
        "docStatus": "final",
        "type": _concept(LOINC, code, display),
        "category": [_concept(DOCUMENT_CATEGORY, "clinical-note", "Clinical Note")],
        "subject": _ref("Patient", pid),
        "date": _instant(day, 9, 40),
        "author": [_ref("Practitioner", doctor)],
        "description": display,
        "content": [{"attachment": {
            "contentType": "text/plain; charset=utf-8",
            "language": "en",
            "data": base64.b64encode(text.encode()).decode(),
            "title": display,
            "creation": _instant(day, 9, 40),
        }}],
        "context": {"encounter": [_ref("Encounter", encounter)],
                    "period": {"start": _instant(day, 9), "end": _instant(day, 9, 30)}},
    }
