"""The realm's linking identifier is managed by the realm (docs/behaviour.md "Linking a
patient's records across servers").

A Patient's identifier with the realm's ``patient_identifier_system`` (the MRN) is what
links one person's records on the realm's servers. The AS's patient index, not the
resource, decides that link — yet a patient- or user-facing app that could rewrite the MRN
would still make every reader of the resource believe the record belongs to someone else. So
a write whose permission comes from ``patient/`` or ``user/`` scopes may not add, remove or
change such an identifier (403, saying why); ``system/`` scopes (backend services acting for
the organisation, SMART §5.1 "system") may. Deleting a Patient is not a change of the
link: the index keeps it, and a Patient that does not exist gives no patient context.

One rule for the built-in server (rest/writes.py, including every entry of a batch or
transaction) and the proxy (proxy/writes.py): the permit carries the system it guards.

A change the rule lets through (a system-level write) must reach the AS's index, or the
next token would still link the record as it was: ``check_link_kept`` notes it in the
``LinkChanges`` of the transaction being written (``collecting``), and the caller reports
them once that transaction has committed (link_reports.py), never for one rolled back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from smartrealm.fhir.access import Permit
from smartrealm.fhir.errors import Forbidden
from smartrealm.guard import AccessContext
from smartrealm.realm.patient_links import linking_value

LINKED_TYPE = "Patient"


def guard_link(permit: Permit, ctx: AccessContext, letter: str, system: str) -> Permit:
    """``permit`` for a write (``letter`` c or u), made to refuse changes of identifiers
    with ``system`` unless every scope granting the write is a ``system/`` scope (fail
    closed: a token mixing contexts is judged by its weakest)."""
    if permit.resource_type != LINKED_TYPE:
        return permit
    scopes = ctx.scopes.for_type(permit.resource_type, letter)
    if scopes and all(s.context == "system" for s in scopes):
        return permit
    return replace(permit, linking_system=system)


def check_link_kept(permit: Permit, before: Any, after: Any) -> None:
    """403 when the permit guards the linking identifier and ``after`` (the resource to be
    written) does not carry exactly the linking identifiers of ``before`` (the live
    version, None when there is none). A write the permit lets change them is noted in the
    transaction's ``LinkChanges``, if one is being collected."""
    if permit.resource_type != LINKED_TYPE:
        return
    system = permit.linking_system
    if system is None:
        changes = _collecting.get()
        if changes is not None:
            changes.note(before, after)
        return
    if linking_identifiers(before, system) != linking_identifiers(after, system):
        raise Forbidden(
            f"the identifier with system {system} links this patient's records across the "
            f"realm's servers and is managed by the realm: it cannot be added, changed or "
            f"removed under patient- or user-level scopes (a system-level client or the "
            f"realm's operator can)")


def linking_identifiers(resource: Any, system: str) -> list[str]:
    """Every identifier with ``system``, each as canonical JSON, sorted: a change of any of
    its parts (value, use, period, assigner) is a change."""
    if not isinstance(resource, dict):
        return []
    identifiers = resource.get("identifier")
    if not isinstance(identifiers, list):
        return []
    return sorted(json.dumps(i, sort_keys=True, separators=(",", ":"))
                  for i in identifiers if isinstance(i, dict) and i.get("system") == system)


# --------------------------------------------------------------------- changes to report


@dataclass(frozen=True)
class LinkChange:
    """Record ``patient_id`` now names ``person`` with the realm's identifier (None: no
    single value any more, so it links to no one)."""

    patient_id: str
    person: str | None


class LinkChanges:
    """The linking-identifier changes of one transaction's system-level Patient writes, the
    last per record (two writes of one record in a transaction leave its last state)."""

    def __init__(self, system: str) -> None:
        self.system = system
        self._changes: dict[str, LinkChange] = {}

    def note(self, before: Any, after: Any) -> None:
        if linking_identifiers(before, self.system) == linking_identifiers(after, self.system):
            return
        patient_id = after.get("id") if isinstance(after, dict) else None
        if isinstance(patient_id, str):
            self._changes[patient_id] = LinkChange(patient_id,
                                                   linking_value(after, self.system))

    @property
    def changes(self) -> list[LinkChange]:
        return list(self._changes.values())


# The transaction being written in this thread (or task). A context variable rather than a
# parameter: every write path (a single write, each batch entry, a transaction, a
# conditional create) reaches ``check_link_kept`` inside one session per transaction
# (rest/writes.py ``WriteService.session``), which is where collecting starts and ends.
_collecting: ContextVar[LinkChanges | None] = ContextVar("link_changes", default=None)


@contextmanager
def collecting(system: str) -> Iterator[LinkChanges]:
    """Note the changes ``check_link_kept`` lets through until the block ends."""
    changes = LinkChanges(system)
    token = _collecting.set(changes)
    try:
        yield changes
    finally:
        _collecting.reset(token)
