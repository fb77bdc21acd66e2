"""What links one person's records across the realm's servers, and how a built-in FHIR
server tells the AS that a system-level write changed it (docs/behaviour.md "Linking a
patient's records across servers").

Both sides of that report live above this module (the FHIR server in ``fhir/``, the AS in
``authz/``, which never import each other); what they must agree on lives here: which value
of a Patient is the person, and the form fields of ``POST {issuer}/patient-index``.
"""

from __future__ import annotations

from typing import Any

# Form fields of the report (application/x-www-form-urlencoded, as every other request a
# resource server sends the AS with its ``rs:`` client credentials, RFC 6749 §2.3.1).
ACTION, PATIENT, PERSON = "action", "patient", "person"
LINK, UNLINK = "link", "unlink"


def linking_value(resource: Any, system: str) -> str | None:
    """The person a Patient names with the realm's identifier: its one value with
    ``system``; None when it has none, or several different ones (nothing to link by)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
        return None
    identifiers = resource.get("identifier")
    values = {i.get("value") for i in identifiers if isinstance(i, dict)
              and i.get("system") == system} if isinstance(identifiers, list) else set()
    value = values.pop() if len(values) == 1 else None
    return value if isinstance(value, str) and value else None


def report_form(patient_id: str, person: str | None) -> dict[str, str]:
    """The body that reports record ``patient_id``'s link: to ``person``, or none."""
    if person is None:
        return {ACTION: UNLINK, PATIENT: patient_id}
    return {ACTION: LINK, PATIENT: patient_id, PERSON: person}
