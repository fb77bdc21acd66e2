"""The user's part of the negotiation (spec §5.3, §12.6): what the user ticks on the consent
page, the granular alternatives offered instead of whole resource types, and remembered
consents that let a later, identical or narrower request skip the page.

Framework-free: the consent page (authz/consent.py) renders and posts these values.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from smartrealm.oauth.negotiate import CONTEXT_SCOPES
from smartrealm.oauth.scope_algebra import build_scope, covered_by_any, meet, minimal
from smartrealm.oauth.scopes import ResourceScope, ScopeSyntaxError, parse_scope

OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
US_CORE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
US_CORE_CONDITION_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
US_CORE_OBSERVATION_CATEGORY = (
    "http://hl7.org/fhir/us/core/CodeSystem/us-core-observation-category")
# §5.1 / §12.6 (g10): the categories a user may choose instead of a whole resource type,
# (system, code, plain-language label).
CATEGORIES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "Observation": (
        (OBSERVATION_CATEGORY, "laboratory", "Laboratory results"),
        (OBSERVATION_CATEGORY, "vital-signs", "Vital signs"),
        (OBSERVATION_CATEGORY, "social-history", "Social history"),
        (US_CORE_CATEGORY, "sdoh", "Social determinants of health"),
        (OBSERVATION_CATEGORY, "survey", "Surveys and questionnaires"),
        (US_CORE_OBSERVATION_CATEGORY, "clinical-test", "Clinical tests"),
    ),
    "Condition": (
        (CONDITION_CATEGORY, "encounter-diagnosis", "Diagnoses made during visits"),
        (CONDITION_CATEGORY, "problem-list-item", "Problem list"),
        (US_CORE_CONDITION_CATEGORY, "health-concern", "Health concerns"),
    ),
}


def granular_alternatives(scope: str) -> tuple[str, ...]:
    """For a resource-level Observation or Condition scope, the category sub-scopes a user
    may grant instead (§5.3 g10 rule), in the v2 grammar with the same letters."""
    parsed = _parse(scope)
    if parsed is None or parsed.params or parsed.resource_type not in CATEGORIES:
        return ()
    return tuple(
        build_scope(parsed.context, parsed.resource_type, parsed.permissions,
                    (("category", f"{system}|{code}"),)).raw
        for system, code, _label in CATEGORIES[parsed.resource_type])


def _parse(scope: str) -> ResourceScope | None:
    try:
        return parse_scope(scope)
    except ScopeSyntaxError:
        return None


def apply_choices(offered: Sequence[str], alternatives: Collection[str],
                  ticked: Collection[str]) -> tuple[str, ...]:
    """What the user approved on one server: context scopes always (they carry no data),
    each offered scope that is ticked, and each ticked alternative that a ticked whole-type
    scope does not already cover. Anything else posted is ignored: a form can narrow the
    offer, never widen it."""
    approved = [s for s in offered if s in CONTEXT_SCOPES or s in ticked]
    whole = [p for p in (_parse(s) for s in approved) if p is not None]
    for alt in alternatives:
        parsed = _parse(alt)
        if alt in ticked and parsed is not None and not covered_by_any(parsed, whole):
            approved.append(alt)
    return tuple(dict.fromkeys(approved))


def remembered_covers(remembered: Mapping[str, Sequence[str]],
                      offers: Mapping[str, Sequence[str]]) -> bool:
    """Does a remembered consent (server id → the scopes offered then) cover this request's
    offers? Every server must have been offered before, every resource scope offered now
    must be covered by one offered then; context scopes must have been offered then."""
    for server_id, scopes in offers.items():
        before = remembered.get(server_id)
        if before is None:
            return False
        old = [p for p in (_parse(s) for s in before) if p is not None]
        for scope in scopes:
            parsed = _parse(scope)
            if parsed is None and scope not in before:
                return False
            if parsed is not None and not covered_by_any(parsed, old):
                return False
    return True


def narrow_to_offer(approved: Iterable[str], offered: Sequence[str]) -> tuple[str, ...]:
    """A remembered approval applied to a new (identical or narrower) offer: each approved
    scope intersected with the new offer; context scopes as offered now."""
    now = [p for p in (_parse(s) for s in offered) if p is not None]
    meets = (meet(a, o) for a in (_parse(s) for s in approved) if a is not None for o in now)
    kept = minimal(m for m in meets if m is not None)
    return tuple([s for s in offered if s in CONTEXT_SCOPES] + [s.raw for s in kept])
