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

One rule for the built-in server (writes.py, including every entry of a batch or
transaction) and the proxy (proxy/writes.py): the permit carries the system it guards."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from smartrealm.guard import AccessContext

from .access import Permit
from .errors import Forbidden

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
    version, None when there is none)."""
    system = permit.linking_system
    if system is None or permit.resource_type != LINKED_TYPE:
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
