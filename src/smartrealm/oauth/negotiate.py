"""Scope negotiation per server (docs/behaviour.md "Scopes"; spec §5.3).

Each server is granted, for every requested resource scope, requested ∩ what that server
supports (its resource types and interactions) ∩ the client's registered ceiling, limited by
the launch context established there (no patient there → no ``patient/`` scopes there). The
user's choices on the consent page narrow it once more (``oauth.approval``).

The rules, each with a test in tests/oauth/test_negotiate_rules.py:

* a malformed resource scope is ``invalid_scope`` at ``/authorize`` (§5.1 lets a server
  reject undefined suffixes; rejecting tells the developer at once) — see scopes.py;
* an unknown non-resource scope (``foo``, ``__ext``, ``launch/imagingstudy``) and a resource
  scope for a type no server holds are dropped, never an error (§5.3: granted may differ);
* duplicates are tolerated (parse_scopes drops them);
* v1 scopes stay v1 when granted, also when narrowed to a v1-expressible set (§5.1);
* the client's ceiling limits resource scopes (data access) only: identity, refresh and
  context scopes are not data access and are never cut by it;
* ``launch/patient`` (and ``patient/`` scopes) only where a patient is established,
  ``launch/encounter`` only where an encounter is, ``launch`` only in an EHR launch (§5.3);
* ``system/`` never in a user's grant (§9); ``user/`` never for a patient user.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartrealm.core.profiles import server_letters
from smartrealm.core.profiles import supported_types as profile_types
from smartrealm.oauth.realm_view import Server
from smartrealm.oauth.scope_algebra import meet, minimal, with_letters
from smartrealm.oauth.scopes import LETTERS, ResourceScope, ScopeSet, ScopeSyntaxError, parse_scopes

# Scopes about the user or the grant, not about a server: top-level ``scope`` only.
IDENTITY_SCOPES = ("openid", "fhirUser", "profile", "offline_access", "online_access")
REFRESH_SCOPES = ("offline_access", "online_access")
EHR_LAUNCH = "launch"
PATIENT_LAUNCH = "launch/patient"
ENCOUNTER_LAUNCH = "launch/encounter"
CONTEXT_SCOPES = (EHR_LAUNCH, PATIENT_LAUNCH, ENCOUNTER_LAUNCH)


@dataclass(frozen=True)
class ServerSupport:
    types: frozenset[str] | None  # None: any type
    letters: frozenset[str]


@dataclass(frozen=True)
class ServerOffer:
    """What one server would get, as shown on the consent page."""

    server: Server
    granted: tuple[str, ...]
    refused: tuple[str, ...]
    patient: str | None
    encounter: str | None = None


def server_support(server: Server) -> ServerSupport:
    """The letters a realm server honours depend on its profile (fhir/interactions.py: the
    EHR reads and writes, imaging and lab read only), as its scopes_supported says. A
    proxy's upstream is unknown."""
    if server.mode == "proxy":
        return ServerSupport(None, frozenset(LETTERS))
    return ServerSupport(frozenset(profile_types(server.profile)),
                         server_letters(server.profile))


def client_ceiling(registered: str) -> ScopeSet | None:
    """The client's registered ``scope`` (RFC 7591 §2) as a ceiling; None when it registered
    none. A ceiling that no longer parses grants no data rather than all data."""
    if not registered.strip():
        return None
    try:
        return parse_scopes(registered)
    except ScopeSyntaxError:
        return ScopeSet()


def needs_patient(requested: ScopeSet) -> bool:
    """Standalone launch (§6.2, §5.3): ``launch/patient`` asks for a patient, and granting
    ``patient/`` scopes requires one (the AS MAY infer ``launch/patient``)."""
    return PATIENT_LAUNCH in requested.other or requested.has_patient_scopes()


def wants_encounter(requested: ScopeSet) -> bool:
    return ENCOUNTER_LAUNCH in requested.other


def within_ceiling(scope: ResourceScope, ceiling: ScopeSet | None) -> tuple[ResourceScope, ...]:
    """``scope`` ∩ the ceiling: possibly split (``patient/*.rs`` under a ceiling of two
    types becomes those two) or constrained (a granular ceiling); () when disjoint."""
    if ceiling is None:
        return (scope,)
    meets = (meet(scope, cap) for cap in ceiling.resource)
    return minimal(m for m in meets if m is not None)


def _context_allowed(scope: ResourceScope, patient: str | None, user_is_patient: bool) -> bool:
    if scope.context == "system":
        return False  # system/ is for Backend Services, never for a user's grant (§9)
    if scope.context == "user" and user_is_patient:
        return False  # a patient user's access is their own record: patient/ scopes
    return scope.context != "patient" or patient is not None  # §5.3


def narrow_scope(scope: ResourceScope, support: ServerSupport, ceiling: ScopeSet | None,
                 patient: str | None, user_is_patient: bool) -> tuple[ResourceScope, ...]:
    """One requested scope at one server: () when nothing of it can be granted there."""
    if not _context_allowed(scope, patient, user_is_patient) or not _holds(support, scope):
        return ()
    supported = with_letters(scope, support.letters)
    if supported is None:
        return ()
    # A wildcard split by a typed ceiling may name types this server does not hold.
    return tuple(s for s in within_ceiling(supported, ceiling) if _holds(support, s))


def _holds(support: ServerSupport, scope: ResourceScope) -> bool:
    return scope.resource_type == "*" or support.types is None \
        or scope.resource_type in support.types


def _context_scopes(requested: ScopeSet, patient: str | None, encounter: str | None,
                    ehr_launch: bool) -> tuple[list[str], list[str]]:
    established = {EHR_LAUNCH: ehr_launch, PATIENT_LAUNCH: patient is not None,
                   ENCOUNTER_LAUNCH: encounter is not None}
    wanted = [s for s in CONTEXT_SCOPES if s in requested.other]
    return ([s for s in wanted if established[s]], [s for s in wanted if not established[s]])


def negotiate_server(requested: ScopeSet, server: Server,
                     ceiling: ScopeSet | None, patient: str | None, user_is_patient: bool,
                     *, encounter: str | None = None, ehr_launch: bool = False) -> ServerOffer:
    granted, refused = _context_scopes(requested, patient, encounter, ehr_launch)
    support = server_support(server)
    for scope in requested.resource:
        narrowed = narrow_scope(scope, support, ceiling, patient, user_is_patient)
        if not narrowed:
            refused.append(scope.raw)
        granted.extend(s.raw for s in narrowed if s.raw not in granted)
    return ServerOffer(server, tuple(granted), tuple(refused), patient, encounter)


def identity_scopes(requested: ScopeSet, has_fhir_user: bool) -> tuple[str, ...]:
    """``openid``/``fhirUser``/``profile`` (§8) and the refresh scopes (§5.2). ``fhirUser``
    only for a user that is a FHIR resource. ``online_access`` is granted as asked, also in
    a standalone launch (§14.23: a hint; the refresh token lives as long as offline's)."""
    kept = [s for s in requested.other if s in IDENTITY_SCOPES]
    return tuple(s for s in kept if s != "fhirUser" or has_fhir_user)
