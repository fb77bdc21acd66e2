"""The built-in server's access rules (fhir/access.py), applied to resources an upstream
returns or a client sends, and pushed into upstream queries where FHIR search can say them.

Decision (docs/behaviour.md "Proxy mode"): whether a resource is inside a permit is decided
by the *same* code the built-in server uses — the resource is indexed (fhir/search/indexing.py) into
a private in-memory SQLite store and the permit's restriction is asked of it with the search
SQL (``versions_matching``), then rolled back. Nothing is re-implemented, so the proxy and the
built-in server cannot disagree about a compartment or a granular ``?category=``."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from smartrealm.fhir.access import Permit
from smartrealm.fhir.repository import StoredResource
from smartrealm.fhir.search.query import (
    Clause,
    IdValue,
    MissingValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    Value,
)
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.fhir.sql.predicates import factor

CHECK_ID = "proxy-check"   # stands in for the id of a resource that has none yet (create)


class ScopeJudge:
    """Answers "is this resource inside the permit?" with the built-in server's SQL."""

    def __init__(self) -> None:
        # One in-memory database shared by every thread (StaticPool), used under a lock.
        engine = create_engine("sqlite://", poolclass=StaticPool,
                               connect_args={"check_same_thread": False})
        self._store = SqlResourceRepository(engine)
        self._store.create_tables()
        self._lock = threading.Lock()

    def allows(self, permit: Permit, resource: Any) -> bool:
        return self.allowed(permit, [resource])[0]

    def allowed(self, permit: Permit, resources: Sequence[Any]) -> list[bool]:
        """One answer per resource; anything that is not a resource of the permit's type
        is outside it."""
        fits = [isinstance(r, dict) and r.get("resourceType") == permit.resource_type
                for r in resources]
        if permit.restriction is None:
            return fits
        candidates = [StoredResource(_checkable(r), 1, "", False)
                      for r, fit in zip(resources, fits, strict=True) if fit]
        with self._lock:
            try:
                answers = iter(self._store.versions_matching(candidates,
                                                             [permit.restriction]))
            except ValueError:   # an id or type the store refuses: not provably inside
                return [False] * len(resources)
        return [fit and next(answers) for fit in fits]


def _checkable(resource: dict[str, Any]) -> dict[str, Any]:
    checked = dict(resource)
    if not isinstance(checked.get("id"), str) or not checked["id"]:
        checked["id"] = CHECK_ID
    return checked


# --------------------------------------------------------------------------- push-down


def pushdown(permit: Permit) -> tuple[list[tuple[str, str]], bool]:
    """Search parameters that make the upstream apply (part of) the restriction, and
    whether they apply *all* of it (then the upstream's ``total`` and paging are exact).

    Only clauses every granted scope shares can be ANDed onto a query (the compartment of
    ``patient/`` scopes, one scope's ``?category=``); a union of different constraints
    cannot be said in one FHIR search, so it is left to filtering."""
    if permit.restriction is None:
        return [], True
    restriction = permit.restriction
    if not restriction.groups:
        return [], False
    common, remaining = factor(restriction)
    params = [p for p in (as_param(c) for c in common) if p is not None]
    exact = remaining is None and len(params) == len(common)
    return params, exact


def as_param(clause: Clause) -> tuple[str, str] | None:
    """``clause`` as one ``name[:modifier]=value,value`` search parameter, or None when it
    has no faithful query form here (dates, quantities, foreign URLs)."""
    values = [_value_text(v) for v in clause.values]
    if any(v is None for v in values) or not values:
        return None
    modifiers = {_modifier(v) for v in clause.values}
    if len(modifiers) != 1:
        return None
    return clause.param + modifiers.pop(), ",".join(v for v in values if v is not None)


def _modifier(value: Value) -> str:
    if isinstance(value, StringValue) and value.mode != "prefix":
        return ":" + value.mode
    if isinstance(value, MissingValue):
        return ":missing"
    return ""


def _value_text(value: Value) -> str | None:
    if isinstance(value, IdValue):
        return _escape(value.id)
    if isinstance(value, ReferenceValue):
        if value.url is not None or value.id is None:
            return None
        return _escape(f"{value.resource_type}/{value.id}" if value.resource_type
                       else value.id)
    if isinstance(value, TokenValue):
        return _token_text(value)
    if isinstance(value, StringValue):
        return _escape(value.text)
    if isinstance(value, MissingValue):
        return "true" if value.missing else "false"
    return None


def _token_text(value: TokenValue) -> str:
    code = _escape(value.code or "")
    if value.system is None:
        return code
    return f"{_escape(value.system)}|{code}"


def _escape(text: str) -> str:
    """R4 §3.1.1.4.7: a comma inside a value is escaped (fhir/search/parse.py split_values)."""
    return text.replace(",", "\\,")
