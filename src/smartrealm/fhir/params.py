"""The resource types a server supports and their search parameters (a small, explicit
subset of the FHIR R4 SearchParameter registry: what the realm's apps and the AS need).

One table drives three things: what the SQL index stores on write, what a search may ask
for, and what the CapabilityStatement advertises, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchParam:
    name: str
    kind: str                  # "token" | "reference" | "string" | "date"
    path: tuple[str, ...]      # element path from the resource root
    documentation: str
    target: str | None = None  # reference params: only references to this type count


def _ref(name: str, path: str, doc: str, target: str | None = None) -> SearchParam:
    return SearchParam(name, "reference", tuple(path.split(".")), doc, target)


def _tok(name: str, path: str, doc: str) -> SearchParam:
    return SearchParam(name, "token", tuple(path.split(".")), doc)


def _str(name: str, path: str, doc: str) -> SearchParam:
    return SearchParam(name, "string", tuple(path.split(".")), doc)


_PATIENT = _ref("patient", "subject", "The patient the record is about", "Patient")
_SUBJECT = _ref("subject", "subject", "Who or what the record is about")
_CATEGORY = _tok("category", "category", "Classification (system|code)")
_CODE = _tok("code", "code", "What was observed or diagnosed (system|code)")
_STATUS = _tok("status", "status", "Status of the record")
_IDENTIFIER = _tok("identifier", "identifier", "A business identifier (system|value)")
_NAME = _str("name", "name", "Any part of the name (starts with, case-insensitive)")
_FAMILY = _str("family", "name.family", "Family name (starts with, case-insensitive)")
_GIVEN = _str("given", "name.given", "Given name (starts with, case-insensitive)")
_ENCOUNTER = _ref("encounter", "encounter", "The encounter of the record", "Encounter")


def _table(*params: SearchParam) -> dict[str, SearchParam]:
    return {p.name: p for p in params}


SEARCH_PARAMS: dict[str, dict[str, SearchParam]] = {
    "Patient": _table(
        _IDENTIFIER, _NAME, _FAMILY, _GIVEN,
        _tok("gender", "gender", "Administrative gender"),
        SearchParam("birthdate", "date", ("birthDate",), "Date of birth (eq, lt, le, gt, ge)"),
    ),
    "Practitioner": _table(_IDENTIFIER, _NAME, _FAMILY, _GIVEN),
    "Encounter": _table(
        _PATIENT, _SUBJECT, _STATUS,
        _tok("class", "class", "Classification of the encounter"),
        _ref("practitioner", "participant.individual", "A participating practitioner",
             "Practitioner"),
    ),
    "Condition": _table(
        _PATIENT, _SUBJECT, _CATEGORY, _CODE, _ENCOUNTER,
        _tok("clinical-status", "clinicalStatus", "active | recurrence | ... | resolved"),
    ),
    "Observation": _table(_PATIENT, _SUBJECT, _CATEGORY, _CODE, _ENCOUNTER, _STATUS),
    "DiagnosticReport": _table(_PATIENT, _SUBJECT, _CATEGORY, _CODE, _ENCOUNTER, _STATUS),
    "ImagingStudy": _table(
        _PATIENT, _SUBJECT, _STATUS,
        _tok("modality", "modality", "Modality of the study (DICOM code)"),
    ),
}

# Types each sample-data profile serves; "empty" is a general-purpose server.
PROFILE_TYPES: dict[str, tuple[str, ...]] = {
    "ehr": ("Patient", "Practitioner", "Encounter", "Condition", "Observation",
            "DiagnosticReport"),
    "imaging": ("Patient", "ImagingStudy", "DiagnosticReport"),
    "lab": ("Patient", "Observation", "DiagnosticReport"),
    "empty": tuple(SEARCH_PARAMS),
}

# The search parameter that places a resource in the Patient compartment
# (http://hl7.org/fhir/R4/compartmentdefinition-patient.html). Types absent here (e.g.
# Practitioner) are not patient data: a patient/ scope reaches all of them (spec §5.1:
# "some related resources, such as Practitioners, may not be reachable" is a MAY).
COMPARTMENT_PARAM: dict[str, str] = {
    "Patient": "_id",
    "Encounter": "patient",
    "Condition": "patient",
    "Observation": "patient",
    "DiagnosticReport": "patient",
    "ImagingStudy": "patient",
}

# Parameters every type understands; "_id" is answered from the resource table itself.
RESULT_PARAMS = frozenset({"_count", "_offset", "_format"})


def supported_types(profile: str) -> tuple[str, ...]:
    return PROFILE_TYPES.get(profile, PROFILE_TYPES["empty"])


def search_params(resource_type: str) -> dict[str, SearchParam]:
    return SEARCH_PARAMS.get(resource_type, {})
