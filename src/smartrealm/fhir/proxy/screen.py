"""What the proxy refuses because it cannot enforce the SMART rules on it (docs/behaviour.md
"Proxy mode").

Every refusal is **400** with an OperationOutcome whose issue code is ``not-supported``:
the request is well-formed FHIR, but this server does not perform it, and it is not a
scope problem (403 would tell the app to ask for more scopes, which would not help).

The rule behind the list: the proxy can vouch only for what it can check resource by
resource with the built-in server's access rules, on resources of the type it authorized:
* ``_include``/``_revinclude``, ``_has`` and chained parameters (``subject.name``) pull in
  or select by resources of other types the token may not reach;
* ``_elements``, ``_summary=true|text``, ``_contained``/``_containedType`` return partial
  resources, on which a compartment or category can no longer be checked;
* ``_query``, ``_filter``, ``_text``, ``_content``, ``_list`` and operations (``$...``) have
  meanings the proxy does not know;
* batch/transaction Bundles, system-level search and history, compartment searches
  (``Patient/x/Observation``) and conditional writes (``If-None-Exist``, ``PUT [type]?``)
  are not forwarded at all."""

from __future__ import annotations

from collections.abc import Iterable

from smartrealm.fhir.errors import BadRequest
from smartrealm.fhir.search.limits import check_search_size

# Result and common parameters whose effect the proxy understands (R4 §3.1.1.5).
ALLOWED_SPECIAL = frozenset({"_id", "_lastUpdated", "_count", "_offset", "_sort", "_summary",
                             "_total", "_format", "_pretty", "_since"})
ALLOWED_SUMMARY = frozenset({"count", "data", "false"})


class NotSupported(BadRequest):
    code = "not-supported"


def screen_params(params: Iterable[tuple[str, str]]) -> None:
    """Parameters the proxy would forward: first the built-in server's size limits (400
    ``too-costly``, search/limits.py: the upstream is spared them too), then what only
    the proxy refuses."""
    params = list(params)
    check_search_size(params)
    for name, value in params:
        base = name.partition(":")[0]
        if base.startswith("_") and base not in ALLOWED_SPECIAL:
            raise NotSupported(f"the proxy does not forward {base}: it cannot check what "
                               "it would return against the token's scopes")
        if "." in base:
            raise NotSupported(f"chained search parameters ({name}) are not supported by "
                               "the proxy")
        if base == "_summary" and value not in ALLOWED_SUMMARY:
            raise NotSupported(f"_summary={value} returns partial resources the proxy "
                               "cannot check; use _summary=count, data or false")


def refuse(what: str) -> NotSupported:
    return NotSupported(f"{what} is not supported through the proxy: it cannot enforce the "
                        "token's scopes on it")


def is_operation(path: str) -> bool:
    return any(segment.startswith("$") for segment in path.split("/"))
