"""Readable one-line summaries of FHIR resources for the record page. Every accessor
tolerates missing or odd fields: a server's data never turns into an error page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Row:
    when: str  # ISO date (sort key: newest first after reverse sorting)
    text: str
    detail: str = ""
    status: str = ""
    id: str = ""


def patient_summary(patient: dict[str, Any]) -> dict[str, str]:
    return {
        "name": _name(patient),
        "gender": _text(patient.get("gender")),
        "birth_date": _text(patient.get("birthDate")),
        "mrn": _text(next((i.get("value") for i in _dicts(patient.get("identifier"))), "")),
        "id": _text(patient.get("id")),
    }


def encounter_row(encounter: dict[str, Any]) -> Row:
    period = encounter.get("period")
    start = period.get("start") if isinstance(period, dict) else None
    kinds = [_concept(t) for t in _dicts(encounter.get("type"))]
    klass = encounter.get("class")
    detail = _text(klass.get("display") or klass.get("code")) if isinstance(klass, dict) else ""
    return Row(_date(start), ", ".join(k for k in kinds if k) or "Encounter", detail,
               _text(encounter.get("status")), _text(encounter.get("id")))


def condition_row(condition: dict[str, Any]) -> Row:
    when = condition.get("onsetDateTime") or condition.get("recordedDate")
    categories = [_concept(c) for c in _dicts(condition.get("category"))]
    return Row(_date(when), _concept(condition.get("code")) or "Condition",
               ", ".join(c for c in categories if c),
               _concept(condition.get("clinicalStatus")), _text(condition.get("id")))


def study_row(study: dict[str, Any]) -> Row:
    modalities = [_text(m.get("code")) for m in _dicts(study.get("modality"))]
    count = study.get("numberOfInstances")
    detail = ", ".join(m for m in modalities if m)
    if isinstance(count, int) and not isinstance(count, bool):
        detail += f" · {count} images"
    return Row(_date(study.get("started")), _text(study.get("description")) or "Imaging study",
               detail, _text(study.get("status")), _text(study.get("id")))


def report_row(report: dict[str, Any]) -> Row:
    when = report.get("effectiveDateTime") or report.get("issued")
    return Row(_date(when), _concept(report.get("code")) or "Report",
               _text(report.get("conclusion")), _text(report.get("status")),
               _text(report.get("id")))


def _name(patient: dict[str, Any]) -> str:
    for name in _dicts(patient.get("name")):
        if isinstance(name.get("text"), str):
            return str(name["text"])
        given = " ".join(g for g in name.get("given", []) if isinstance(g, str)) \
            if isinstance(name.get("given"), list) else ""
        full = f"{given} {_text(name.get('family'))}".strip()
        if full:
            return full
    return "(no name)"


def _concept(concept: object) -> str:
    if not isinstance(concept, dict):
        return ""
    if isinstance(concept.get("text"), str):
        return str(concept["text"])
    for coding in _dicts(concept.get("coding")):
        label = coding.get("display") or coding.get("code")
        if isinstance(label, str):
            return label
    return ""


def _date(value: object) -> str:
    return value[:10] if isinstance(value, str) else ""


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
