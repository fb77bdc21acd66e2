"""How big one search may be: the one home of the rule for the built-in server (every
backend) and the proxy, which sends a client's parameters upstream.

Why: every criterion becomes a SQL predicate and every comma-separated value an OR term
(sql/predicates.py). Unbounded, a search of a few kilobytes builds a statement deeper than
SQLite accepts ("Expression tree is too large (maximum depth 1000)") or with more bound
parameters than a driver can send — a 500 for the client, a costly plan for the server. The
limits below leave room for any realistic query (the search-limit property test in
tests/fhir/test_search_limits.py runs searches of exactly this size on SQLite and
PostgreSQL) and refuse anything larger, before any SQL is built, with **400** and an
OperationOutcome whose issue code is ``too-costly`` (R4 valueset-issue-type: "the operation
was not allowed because it would take too much time or resources"). docs/behaviour.md
"Searching" lists them."""

from __future__ import annotations

from collections.abc import Sequence

from smartrealm.core.defaults import SEARCH_MAX_LENGTH as MAX_SEARCH_LENGTH
from smartrealm.core.defaults import SEARCH_MAX_PARAMETERS as MAX_PARAMETERS
from smartrealm.core.defaults import SEARCH_MAX_VALUE_LENGTH as MAX_VALUE_LENGTH
from smartrealm.core.defaults import SEARCH_MAX_VALUES as MAX_VALUES
from smartrealm.core.defaults import SEARCH_MAX_VALUES_PER_PARAMETER as MAX_VALUES_PER_PARAMETER
from smartrealm.fhir.errors import TooCostly
from smartrealm.fhir.search.values import split_values


def check_search_size(params: Sequence[tuple[str, str]]) -> None:
    """400 ``too-costly`` when ``params`` exceed a limit; the message names it."""
    if len(params) > MAX_PARAMETERS:
        raise TooCostly(f"a search may have at most {MAX_PARAMETERS} parameters "
                        f"({len(params)} were sent)")
    length = sum(len(name) + len(raw) for name, raw in params)
    if length > MAX_SEARCH_LENGTH:
        raise TooCostly(f"the parameters of a search may have at most {MAX_SEARCH_LENGTH} "
                        f"characters together ({length} were sent)")
    total = 0
    for name, raw in params:
        values = split_values(raw)
        if len(values) > MAX_VALUES_PER_PARAMETER:
            raise TooCostly(f"{name[:64]} has {len(values)} values; a parameter may have "
                            f"at most {MAX_VALUES_PER_PARAMETER}")
        if any(len(v) > MAX_VALUE_LENGTH for v in values):
            raise TooCostly(f"a value of {name[:64]} is longer than {MAX_VALUE_LENGTH} "
                            "characters")
        total += len(values)
    if total > MAX_VALUES:
        raise TooCostly(f"a search may have at most {MAX_VALUES} values in all its "
                        f"parameters together ({total} were sent)")
