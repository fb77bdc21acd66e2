"""Scope negotiation per server (design.md "Scopes"; spec §5.3): each server is granted
requested ∩ what that server supports ∩ the client's ceiling, further limited by the launch
context (no patient there → no patient scopes there). The consent page shows the result, and
the refused part, per server.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartrealm.oauth.scopes import ResourceScope, ScopeSet
from smartrealm.realm.config import ResourceServerConfig

# The resource types each sample-data profile holds. A server whose profile says nothing
# (``empty``, or a proxy in front of an unknown server) is not restricted by type.
PROFILE_TYPES: dict[str, frozenset[str]] = {
    "ehr": frozenset({"Patient", "Practitioner", "Encounter", "Condition", "Observation"}),
    "imaging": frozenset({"Patient", "ImagingStudy", "DiagnosticReport"}),
    "lab": frozenset({"Patient", "Observation", "DiagnosticReport"}),
}
# Scopes about the user or the grant, not about a server: top-level ``scope`` only.
IDENTITY_SCOPES = ("openid", "fhirUser", "profile", "offline_access", "online_access")
REFRESH_SCOPES = ("offline_access", "online_access")
PATIENT_LAUNCH = "launch/patient"


@dataclass(frozen=True)
class ServerOffer:
    """What one server would get, as shown on the consent page."""

    server: ResourceServerConfig
    granted: tuple[str, ...]
    refused: tuple[str, ...]
    patient: str | None
    note: str = ""


def supported_types(server: ResourceServerConfig) -> frozenset[str] | None:
    if server.mode == "proxy":
        return None
    return PROFILE_TYPES.get(server.profile)


def needs_patient(requested: ScopeSet) -> bool:
    """Standalone launch (§6.2, §5.3): ``launch/patient`` asks for a patient, and granting
    ``patient/`` scopes requires one, so either makes the AS establish a patient."""
    return PATIENT_LAUNCH in requested.other or requested.has_patient_scopes()


def apply_ceiling(scope: ResourceScope, ceiling: ScopeSet | None) -> ResourceScope | None:
    """Narrow ``scope`` to the client's registered scopes: permission letters of ceiling
    scopes with the same context, a covering type and no stricter constraint."""
    if ceiling is None:
        return scope
    letters: set[str] = set()
    for cap in ceiling.resource:
        same_type = cap.resource_type in ("*", scope.resource_type)
        if cap.context == scope.context and same_type and cap.params in ((), scope.params):
            letters |= cap.permissions
    kept = scope.permissions & letters
    if not kept:
        return None
    return scope if kept == scope.permissions else scope.with_permissions("".join(kept))


def _resource_allowed(scope: ResourceScope, types: frozenset[str] | None,
                      patient: str | None, user_is_patient: bool) -> bool:
    if scope.context == "system":
        return False  # system/ is for Backend Services, never for a user's grant (§9)
    if scope.context == "user" and user_is_patient:
        return False  # a patient user's access is their own record: patient/ scopes
    if scope.context == "patient" and patient is None:
        return False  # §5.3: patient/ scopes need a patient in context on this server
    return scope.resource_type == "*" or types is None or scope.resource_type in types


def negotiate_server(requested: ScopeSet, server: ResourceServerConfig,
                     ceiling: ScopeSet | None, patient: str | None,
                     user_is_patient: bool) -> ServerOffer:
    granted: list[str] = []
    refused: list[str] = []
    types = supported_types(server)
    for scope in requested.resource:
        narrowed = None
        if _resource_allowed(scope, types, patient, user_is_patient):
            narrowed = apply_ceiling(scope, ceiling)
        if narrowed is None:
            refused.append(scope.raw)
        else:
            granted.append(narrowed.raw)
    if PATIENT_LAUNCH in requested.other:
        target = granted if patient is not None else refused
        target.insert(0, PATIENT_LAUNCH)
    return ServerOffer(server, tuple(granted), tuple(refused), patient)


def identity_scopes(requested: ScopeSet, has_fhir_user: bool) -> tuple[str, ...]:
    """``openid``/``fhirUser``/``profile`` (§8) and the refresh scopes (§5.2). ``fhirUser``
    only for a user that is a FHIR resource."""
    kept = [s for s in requested.other if s in IDENTITY_SCOPES]
    return tuple(s for s in kept if s != "fhirUser" or has_fhir_user)
