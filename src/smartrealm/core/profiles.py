"""What each server profile serves: its resource types and the SMART permission letters it
honours. The FHIR servers (routes, CapabilityStatement, ``smartrealm load``) and the AS
(scope negotiation, ``scopes_supported``) read these tables, so what a server advertises,
what the AS grants for it and what it answers cannot disagree.

Decision (docs/behaviour.md "Writing"): the EHR and general-purpose ("empty") profiles are
read-write (``cruds``); the imaging and lab profiles model departmental systems whose records
come from their own workflow (modalities, analysers) and enter with ``smartrealm load``, so
over the API they are read-only (``rs``): a write there is 405 and the AS never grants
``c``/``u``/``d`` for them."""

from __future__ import annotations

PROFILES = ("ehr", "imaging", "lab", "empty")

WRITE_LETTERS = frozenset("cud")
READ_WRITE = frozenset("cruds")
READ_ONLY = frozenset("rs")

PROFILE_LETTERS: dict[str, frozenset[str]] = {
    "ehr": READ_WRITE,
    "empty": READ_WRITE,
    "imaging": READ_ONLY,
    "lab": READ_ONLY,
}

# Every type the realm's FHIR servers implement (each has its search parameters in
# fhir/search/params.py; a test keeps the two lists equal). The "empty" profile serves them all.
ALL_TYPES = ("Patient", "Practitioner", "Organization", "Endpoint", "Encounter", "Condition",
             "Observation", "DiagnosticReport", "ImagingStudy", "MedicationRequest",
             "AllergyIntolerance", "Procedure", "DocumentReference")

PROFILE_TYPES: dict[str, tuple[str, ...]] = {
    "ehr": ("Patient", "Practitioner", "Organization", "Encounter", "Condition", "Observation",
            "DiagnosticReport", "MedicationRequest", "AllergyIntolerance", "Procedure",
            "DocumentReference"),
    "imaging": ("Patient", "ImagingStudy", "DiagnosticReport", "Endpoint"),
    "lab": ("Patient", "Observation", "DiagnosticReport"),
    "empty": ALL_TYPES,
}


def server_letters(profile: str) -> frozenset[str]:
    """The permission letters a server with ``profile`` can honour."""
    return PROFILE_LETTERS.get(profile, READ_ONLY)


def supported_types(profile: str) -> tuple[str, ...]:
    """The resource types a server with ``profile`` serves."""
    return PROFILE_TYPES.get(profile, PROFILE_TYPES["empty"])
