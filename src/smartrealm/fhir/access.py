"""Scope × interaction × compartment (spec §5.1, §5.3 "Enforcement at the RS").

For one interaction on one type, every granted scope that covers it (step 3) contributes the
set of resources it allows: all of them for ``user/`` and ``system/`` scopes (steps 4 and 6
have no per-user ACLs yet), the in-context patient's compartment for ``patient/`` scopes
(step 4), narrowed by the scope's granular ``?param=value`` constraints (step 5). Scopes
combine as a union (§5.1), so the permit is an OR of those sets.

Decisions (documented for the team):
* Reading a resource outside what the token allows answers **403** (insufficient_scope),
  the same status as a search naming another patient; existence of an id is not secret.
* A search under ``patient/`` scopes that names no patient is confined to the patient; one
  that names only other patients is refused with 403 rather than silently emptied.
* A granular constraint this server cannot evaluate makes that scope grant nothing: an
  unenforceable restriction must never widen access.
* Types outside the Patient compartment (Practitioner) are fully readable under a
  ``patient/`` scope for them: they hold no patient data.

Writes (c, u, d; spec §5.1 and §13 item 24's proposal, docs/behaviour.md "Writing"):
* A ``patient/`` scope writes only inside the patient's compartment *on this server*: a
  created or updated resource must reference the token's patient here (``Patient/<id>``),
  a Patient can be written only if it is the patient itself, and types outside the
  compartment (Practitioner, Organization...) cannot be written at all: an app acting for
  one patient must not change records shared by everyone.
* A granular scope restricts writes like reads: the submitted resource must match its
  query (e.g. the category). Update needs both the stored resource (nothing outside the
  scope may be overwritten) and the new version (nothing may be moved out of it) to match;
  delete needs the stored resource to match.
* ``u`` covers update-as-create ("upsert", §5.1); it never needs ``c`` as well.
* The checks run on the resource as stored and indexed, inside the write's own database
  transaction, with the very SQL a search uses; a refusal rolls the write back (403)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from smartrealm.core.profiles import WRITE_LETTERS
from smartrealm.fhir.errors import BadRequest, Forbidden
from smartrealm.fhir.search.params import COMPARTMENT_PARAM
from smartrealm.fhir.search.parse import parse_param
from smartrealm.fhir.search.query import AnyOf, Clause, IdValue, ReferenceValue
from smartrealm.guard import AccessContext
from smartrealm.oauth.scopes import ResourceScope

INTERACTIONS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


@dataclass(frozen=True)
class Permit:
    """``restriction`` None: everything of the type; otherwise only what matches it."""

    resource_type: str
    restriction: AnyOf | None
    patient_only: bool   # every granting scope is confined to the context patient
    # Writes only: identifiers with this system may not change (linking.py); None: they may.
    linking_system: str | None = None


def authorize(ctx: AccessContext, resource_type: str, letter: str, *,
              base_url: str) -> Permit:
    """What ``ctx`` may do for ``letter`` (c, r, u, d or s) on ``resource_type``; 403 if
    nothing."""
    scopes = ctx.scopes.for_type(resource_type, letter)
    groups: list[tuple[Clause, ...]] = []
    for scope in scopes:
        group = _scope_group(scope, resource_type, ctx.patient, base_url, letter)
        if group == ():
            return Permit(resource_type, None, patient_only=False)
        if group is not None:
            groups.append(group)
    if not groups:
        raise Forbidden(f"no granted scope allows {INTERACTIONS.get(letter, letter)} "
                        f"of {resource_type}")
    patient_only = resource_type in COMPARTMENT_PARAM and all(
        s.context == "patient" for s in scopes)
    return Permit(resource_type, AnyOf(tuple(groups)), patient_only)


def check_named_patients(permit: Permit, ctx: AccessContext,
                         criteria: Sequence[Clause]) -> None:
    """A patient-confined search that names only other patients is refused (403), so a
    client learns its token does not reach them rather than seeing an empty page."""
    if not permit.patient_only or ctx.patient is None:
        return
    for clause in criteria:
        named = _named_patients(permit.resource_type, clause)
        if named is not None and ctx.patient not in named:
            raise Forbidden(f"the token only allows the context patient's data; the search "
                            f"names {', '.join(sorted(named)) or 'another patient'}")


def compartment_clause(resource_type: str, patient_id: str) -> Clause:
    param = COMPARTMENT_PARAM[resource_type]
    if param == "_id":
        return Clause("_id", "id", (IdValue(patient_id),))
    return Clause(param, "reference", (ReferenceValue("Patient", patient_id),))


def require_match(permit: Permit, holds: Callable[[AnyOf], bool], what: str) -> None:
    """403 unless the permit is unrestricted or ``holds(restriction)`` (the resource, as
    the caller's transaction sees it, matches what the scopes allow)."""
    if permit.restriction is not None and not holds(permit.restriction):
        raise Forbidden(f"the token's scopes do not allow {what}")


def _scope_group(scope: ResourceScope, resource_type: str, patient: str | None,
                 base_url: str, letter: str = "r") -> tuple[Clause, ...] | None:
    """The AND of constraints one scope imposes; None when the scope can grant nothing."""
    clauses: list[Clause] = []
    if scope.context == "patient" and resource_type in COMPARTMENT_PARAM:
        if patient is None:
            return None  # §5.3: a patient/ scope needs a patient in context
        clauses.append(compartment_clause(resource_type, patient))
    elif scope.context == "patient" and letter in WRITE_LETTERS:
        return None  # no patient/ writes outside the compartment (docstring)
    for name, value in scope.params:
        try:
            clause = parse_param(resource_type, name, value, base_url=base_url)
        except BadRequest:
            clause = None
        if clause is None:
            return None
        clauses.append(clause)
    return tuple(clauses)


def _named_patients(resource_type: str, clause: Clause) -> set[str] | None:
    """Patient ids a criterion names, or None if it names no patient at all."""
    if resource_type == "Patient" and clause.kind == "id":
        return {v.id for v in clause.values if isinstance(v, IdValue)}
    if clause.param not in ("patient", "subject") or clause.kind != "reference":
        return None
    named: set[str] = set()
    for value in clause.values:
        if isinstance(value, ReferenceValue) and value.resource_type in ("Patient", None) \
                and value.id is not None:
            named.add(value.id)
        elif isinstance(value, ReferenceValue) and value.url is not None:
            named.add(value.url)
    return named
