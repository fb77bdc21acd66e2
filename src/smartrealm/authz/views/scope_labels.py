"""Plain-language descriptions of scopes for the consent page (spec §5.3 "Consent UI": a
short description per scope, wildcards explained, query scopes explained; §13).

``describe(scope)`` returns a short label and a longer explanation; the raw scope is shown
next to them, so nothing is hidden behind the wording.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartrealm.oauth.approval import CATEGORIES
from smartrealm.oauth.scopes import ResourceScope, ScopeSyntaxError, parse_scope

TYPE_NAMES = {
    "Patient": "demographics (name, birth date, contact details)",
    "Practitioner": "care team members",
    "Encounter": "visits and stays",
    "Condition": "conditions and diagnoses",
    "Observation": "observations (lab results, vital signs and other measurements)",
    "DiagnosticReport": "diagnostic reports",
    "ImagingStudy": "imaging studies",
    "MedicationRequest": "prescriptions",
    "AllergyIntolerance": "allergies",
    "Immunization": "immunizations",
    "Procedure": "procedures",
}
VERBS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
WHOSE = {"patient": "of the patient", "user": "that you can access",
         "system": "allowed to the application itself"}
OTHER = {
    "launch/patient": ("Know which patient is selected", "The application learns which "
                       "patient record it works with on this server."),
    "launch/encounter": ("Know which visit is selected", "The application learns which "
                         "encounter (visit or stay) it works with."),
    "launch": ("Use the context of the EHR session", "The application receives the patient "
               "and encounter already open in the EHR."),
    "openid": ("Know who you are", "The application receives a signed statement of your "
               "identity (OpenID Connect)."),
    "fhirUser": ("Know your FHIR record", "The application learns which Patient or "
                 "Practitioner record represents you."),
    "profile": ("Know your name", "The application may read your basic profile."),
    "offline_access": ("Keep access when you are away", "The application may keep "
                       "refreshing its access after you close it, until you revoke it."),
    "online_access": ("Keep access while you are signed in", "The application may refresh "
                      "its access while you keep using it."),
}


@dataclass(frozen=True)
class ScopeLabel:
    scope: str
    short: str
    long: str


def _category_label(resource_type: str, value: str) -> str:
    system, _, code = value.rpartition("|")
    for known_system, known_code, label in CATEGORIES.get(resource_type, ()):
        if code == known_code and system in ("", known_system):
            return label.lower()
    return f"category {value}"


def _constraint(scope: ResourceScope) -> str:
    # §5.1 granular scopes: explain the query in words.
    parts = [_category_label(scope.resource_type, v) if k == "category" else f"{k} = {v}"
             for k, v in scope.params]
    return " — only " + " and ".join(parts) if parts else ""


def _resource(scope: ResourceScope) -> ScopeLabel:
    verbs = [VERBS[ch] for ch in "cruds" if ch in scope.permissions]
    action = ", ".join(verbs[:-1]) + (" and " if len(verbs) > 1 else "") + verbs[-1]
    if scope.resource_type == "*":
        what = "all kinds of data"
        note = (" This is a wildcard: it covers every kind of data this server holds, "
                "including kinds added later.")
    else:
        what = TYPE_NAMES.get(scope.resource_type, f"{scope.resource_type} records")
        note = ""
    short = f"{action.capitalize()} {what} {WHOSE[scope.context]}{_constraint(scope)}"
    writes = " It may change data, not only read it." if scope.permissions & set("cud") else ""
    return ScopeLabel(scope.raw, short, f"{short}.{note}{writes}")


def describe_alternative(scope: str) -> ScopeLabel:
    """A category alternative, listed under its whole-type scope: just the constraint."""
    full = describe(scope)
    _, _, only = full.short.partition(" — only ")
    return ScopeLabel(scope, f"Only {only}" if only else full.short, full.long)


def describe(scope: str) -> ScopeLabel:
    """A label for any scope string; unknown scopes are described as such."""
    if scope in OTHER:
        short, long = OTHER[scope]
        return ScopeLabel(scope, short, long)
    try:
        parsed = parse_scope(scope)
    except ScopeSyntaxError:
        parsed = None
    if parsed is None:
        return ScopeLabel(scope, "Other permission", f"A permission named {scope}.")
    return _resource(parsed)
