"""The resource types a server supports and their search parameters (a small, explicit
subset of the FHIR R4 SearchParameter registry, http://hl7.org/fhir/R4/searchparameter-
registry.html: what the realm's apps and the AS need).

One table drives four things: what the SQL index stores on write, what a search may ask
for, what ``_include``/``_revinclude``/``_sort`` accept, and what the CapabilityStatement
advertises, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SearchParam:
    name: str
    kind: str                        # "token" | "reference" | "string" | "date" | "quantity"
    paths: tuple[tuple[str, ...], ...]  # element paths from the resource root (choice types
    #                                     such as effective[x] list each variant)
    documentation: str
    target: str | None = None        # reference params: only references to this type count

    @property
    def path(self) -> tuple[str, ...]:
        return self.paths[0]


def _param(kind: str, name: str, paths: str, doc: str, target: str | None = None) -> SearchParam:
    return SearchParam(name, kind, tuple(tuple(p.split(".")) for p in paths.split("|")), doc,
                       target)


def _ref(name: str, path: str, doc: str, target: str | None = None) -> SearchParam:
    return _param("reference", name, path, doc, target)


def _tok(name: str, path: str, doc: str) -> SearchParam:
    return _param("token", name, path, doc)


def _str(name: str, path: str, doc: str) -> SearchParam:
    return _param("string", name, path, doc)


def _date(name: str, path: str, doc: str) -> SearchParam:
    return _param("date", name, path, doc)


_PATIENT = _ref("patient", "subject", "The patient the record is about", "Patient")
_SUBJECT = _ref("subject", "subject", "Who or what the record is about")
_CATEGORY = _tok("category", "category", "Classification (system|code)")
_CODE = _tok("code", "code", "What was observed or diagnosed (system|code)")
_STATUS = _tok("status", "status", "Status of the record")
_IDENTIFIER = _tok("identifier", "identifier", "A business identifier (system|value)")
_NAME = _str("name", "name", "Any part of the name (starts with, case- and accent-insensitive)")
_FAMILY = _str("family", "name.family", "Family name (starts with)")
_GIVEN = _str("given", "name.given", "Given name (starts with)")
_ENCOUNTER = _ref("encounter", "encounter", "The encounter of the record", "Encounter")
_DATE_DOC = "When it happened (eq ne lt le gt ge sa eb; partial dates)"


def _table(*params: SearchParam) -> dict[str, SearchParam]:
    return {p.name: p for p in params}


SEARCH_PARAMS: dict[str, dict[str, SearchParam]] = {
    "Patient": _table(
        _IDENTIFIER, _NAME, _FAMILY, _GIVEN,
        _tok("gender", "gender", "Administrative gender"),
        _date("birthdate", "birthDate", "Date of birth"),
        _ref("general-practitioner", "generalPractitioner", "The patient's nominated GP"),
    ),
    "Practitioner": _table(_IDENTIFIER, _NAME, _FAMILY, _GIVEN),
    "Organization": _table(_IDENTIFIER, _str("name", "name|alias", "Name or alias (starts "
                                             "with, case- and accent-insensitive)")),
    "Endpoint": _table(
        _IDENTIFIER, _str("name", "name", "Name of the endpoint (starts with)"), _STATUS,
        _tok("connection-type", "connectionType", "Protocol/profile of the endpoint"),
        _ref("organization", "managingOrganization", "The managing organization",
             "Organization"),
    ),
    "Encounter": _table(
        _PATIENT, _SUBJECT, _STATUS,
        _date("date", "period", "When the encounter took place (period)"),
        _tok("class", "class", "Classification of the encounter"),
        _ref("practitioner", "participant.individual", "A participating practitioner",
             "Practitioner"),
    ),
    "Condition": _table(
        _PATIENT, _SUBJECT, _CATEGORY, _CODE, _ENCOUNTER,
        _tok("clinical-status", "clinicalStatus", "active | recurrence | ... | resolved"),
    ),
    "Observation": _table(
        _PATIENT, _SUBJECT, _CATEGORY, _CODE, _ENCOUNTER, _STATUS,
        _date("date", "effectiveDateTime|effectivePeriod|effectiveInstant", _DATE_DOC),
        _param("quantity", "value-quantity", "valueQuantity",
               "The value ([prefix]number|system|code)"),
    ),
    "DiagnosticReport": _table(
        _PATIENT, _SUBJECT, _CATEGORY, _CODE, _ENCOUNTER, _STATUS,
        _date("date", "effectiveDateTime|effectivePeriod", _DATE_DOC),
        _ref("result", "result", "An Observation that is part of the report", "Observation"),
    ),
    "ImagingStudy": _table(
        _PATIENT, _SUBJECT, _STATUS, _IDENTIFIER,
        _date("started", "started", "When the study was started"),
        _tok("modality", "modality", "Modality of the study (DICOM code)"),
    ),
    "MedicationRequest": _table(
        _PATIENT, _SUBJECT, _STATUS, _ENCOUNTER,
        _tok("intent", "intent", "proposal | plan | order | ..."),
        _tok("code", "medicationCodeableConcept", "The medication (system|code)"),
    ),
    "AllergyIntolerance": _table(
        _ref("patient", "patient", "Who the sensitivity is for", "Patient"),
        _tok("clinical-status", "clinicalStatus", "active | inactive | resolved"),
        _tok("code", "code", "The substance (system|code)"),
    ),
    "Procedure": _table(
        _PATIENT, _SUBJECT, _CODE, _STATUS, _ENCOUNTER,
        _date("date", "performedDateTime|performedPeriod", _DATE_DOC),
    ),
    "DocumentReference": _table(
        _PATIENT, _SUBJECT, _STATUS, _CATEGORY,
        _tok("type", "type", "Kind of document (system|code)"),
        _date("date", "date", "When the reference was created"),
    ),
}

# Types each sample-data profile serves; "empty" is a general-purpose server.
# The search parameter that places a resource in the Patient compartment
# (http://hl7.org/fhir/R4/compartmentdefinition-patient.html). Types absent here
# (Practitioner, Organization, Endpoint) are not patient data: a patient/ scope reaches all
# of them (spec §5.1: "some related resources, such as Practitioners, may not be reachable"
# is a MAY).
COMPARTMENT_PARAM: dict[str, str] = {
    "Patient": "_id",
    **{t: "patient" for t in ("Encounter", "Condition", "Observation", "DiagnosticReport",
                              "ImagingStudy", "MedicationRequest", "AllergyIntolerance",
                              "Procedure", "DocumentReference")},
}

# Result parameters (R4 §3.1.1.5) every type understands; "_id" and "_lastUpdated" are
# criteria answered from the resource table itself.
RESULT_PARAMS = frozenset({"_count", "_offset", "_format", "_sort", "_summary", "_total",
                           "_include", "_revinclude", "_pretty"})
SORTABLE_KINDS = frozenset({"date", "string", "token"})


def search_params(resource_type: str) -> dict[str, SearchParam]:
    return SEARCH_PARAMS.get(resource_type, {})


def reference_params(resource_type: str) -> list[SearchParam]:
    """What ``_include=<type>:<param>`` / ``_revinclude=<type>:<param>`` may name."""
    return [p for p in search_params(resource_type).values() if p.kind == "reference"]


def revinclude_params(resource_type: str, served: tuple[str, ...]) -> list[str]:
    """``Type:param`` of every reference param of a served type that can point here."""
    return [f"{t}:{p.name}" for t in served for p in reference_params(t)
            if p.target in (None, resource_type)]


def search_capability(resource_type: str, served: tuple[str, ...]) -> dict[str, Any]:
    """CapabilityStatement.rest.resource search fields, from the same table the server
    searches with (R4 capabilitystatement.html)."""
    params = [{"name": "_id", "type": "token", "documentation": "Logical id"},
              {"name": "_lastUpdated", "type": "date",
               "documentation": "When the resource last changed (date prefixes)"}]
    params += [{"name": p.name, "type": p.kind, "documentation": p.documentation}
               for p in search_params(resource_type).values()]
    found: dict[str, Any] = {}
    includes = [f"{resource_type}:{p.name}" for p in reference_params(resource_type)]
    if includes:
        found["searchInclude"] = includes
    reverse = revinclude_params(resource_type, served)
    if reverse:
        found["searchRevInclude"] = reverse
    return {**found, "searchParam": params}
