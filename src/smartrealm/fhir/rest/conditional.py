"""Conditional create (R4 http.html#ccreate): ``POST [type]`` with ``If-None-Exist:
[search parameters]`` creates the resource only if that search finds nothing — one match
answers 200 with it, more than one 412.

Decisions (docs/behaviour.md "Writing"):

* **The search is the token's own search.** It runs with exactly the restriction a
  ``GET [type]?…`` by this token would (fhir/access.py: the ``patient/`` compartment,
  granular ``?category=…`` scopes), so it can only find — and only ever reports — what the
  token could find anyway: a resource outside the token's scopes is neither matched nor
  counted (a patient app cannot learn that another patient has a record with some
  identifier; it simply creates its own). Hence a conditional create needs ``s`` on the
  type as well as ``c`` (403 otherwise), and a ``patient/`` condition naming only other
  patients is 403, as that search would be.
* **The condition is strict.** Unknown parameters, result parameters (``_count``,
  ``_sort``, …) and a condition with no criterion at all are 400: a dropped criterion would
  widen the match, and an empty one would match everything.
* **Concurrency.** Two conditional creates with the same condition are serialised: a
  process-wide lock stripe keyed by the type and the parsed criteria, and, on PostgreSQL,
  a transaction-level advisory lock on the same key (WriteSession.exclusive), both held
  until the create has committed — so the second one finds the first one's resource.
  Conditions that differ in form but match the same resources (``identifier=x`` and
  ``identifier=sys|x``) are not serialised against each other."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl

from smartrealm.core.defaults import SEARCH_MAX_PARAMETERS as MAX_PARAMETERS
from smartrealm.fhir.access import Permit
from smartrealm.fhir.errors import BadRequest, MultipleMatches
from smartrealm.fhir.repository import StoredResource, WriteSession
from smartrealm.fhir.search.params import RESULT_PARAMS
from smartrealm.fhir.search.parse import parse_search
from smartrealm.fhir.search.query import Clause, PageQuery

_STRIPES = tuple(threading.Lock() for _ in range(64))


def parse_condition(resource_type: str, header: str, *, base_url: str) -> tuple[Clause, ...]:
    """The criteria of ``If-None-Exist`` (``a=1&b=2``; a leading ``?`` or ``[type]?`` is
    accepted, as some clients send the search URL's query that way)."""
    query = header.strip()
    for prefix in (f"{resource_type}?", "?"):
        if query.startswith(prefix):
            query = query[len(prefix):]
            break
    try:
        params = parse_qsl(query, keep_blank_values=True, strict_parsing=True,
                           errors="strict", max_num_fields=MAX_PARAMETERS)
    except ValueError:  # also UnicodeDecodeError, and more fields than a search may have
        raise BadRequest(f"If-None-Exist is not a search query ({header[:80]!r})") from None
    for name, _ in params:
        if name.partition(":")[0] in RESULT_PARAMS:
            raise BadRequest(f"If-None-Exist takes search criteria only, not {name[:40]}")
    request = parse_search(resource_type, params, base_url=base_url, strict=True)
    if not request.criteria:
        raise BadRequest("If-None-Exist names no search criterion")
    return request.criteria


def condition_key(resource_type: str, criteria: tuple[Clause, ...]) -> str:
    """The same condition, whatever the order of its parameters, gives the same key."""
    return resource_type + "?" + "&".join(sorted(repr(c) for c in criteria))


@contextmanager
def serialised(key: str) -> Iterator[None]:
    """The process-wide half of the lock (the database's half is WriteSession.exclusive)."""
    with _STRIPES[hash(key) % len(_STRIPES)]:
        yield


def existing_match(session: WriteSession, seen: Permit, criteria: tuple[Clause, ...],
                   key: str) -> StoredResource | None:
    """The one resource the condition matches among those ``seen`` (the token's search
    permit) allows; None when there is none; 412 when there are several."""
    session.exclusive(key)
    resource_type = seen.resource_type
    restriction = () if seen.restriction is None else (seen.restriction,)
    found = session.page(PageQuery(resource_type, (*criteria, *restriction), 2,
                                   total=False))
    if len(found.resources) > 1:
        raise MultipleMatches("If-None-Exist matches more than one resource; make the "
                              "criteria more selective")
    if not found.resources:
        return None
    return session.get(resource_type, found.resources[0]["id"])
