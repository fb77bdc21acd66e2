"""Turn a resource into search-index entries, one per searchable value (params.py says
which elements). The SQL store writes them next to the resource on every write."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterator
from typing import Any, NamedTuple

from smartrealm.core.fhir_ids import is_fhir_id, is_resource_type
from smartrealm.fhir.search.dates import parse_range, period_range
from smartrealm.fhir.search.params import SearchParam, search_params


class IndexEntry(NamedTuple):
    param: str
    system: str | None = None
    value: str | None = None      # token code, folded string, quantity code, or foreign URL
    ref_type: str | None = None
    ref_id: str | None = None
    low: str | None = None        # date range [low, high) as fhir.dates.format_instant
    high: str | None = None
    number: float | None = None   # quantity value
    exact: str | None = None      # string as written (for :exact)


def fold(text: str) -> str:
    """Case- and accent-insensitive form (R4 §3.1.1.4.3 "string": "the search is
    case-insensitive and accent-insensitive"): NFKD, combining marks dropped, casefolded."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def index_entries(resource: dict[str, Any]) -> list[IndexEntry]:
    """Every index entry of ``resource``, de-duplicated, in a stable order.

    Decision: an absolute reference is indexed as written, as a foreign URL, also when it
    points at this server's own base: only ``Type/id`` places a resource in a compartment
    (fhir/access.py "Writes"), and search agrees with that."""
    entries: dict[IndexEntry, None] = {}
    for param in search_params(str(resource.get("resourceType", ""))).values():
        for path in param.paths:
            for element in walk(resource, path):
                for entry in _entries(param, element):
                    entries.setdefault(entry, None)
    return list(entries)


def walk(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    """Values at ``path``, flattening arrays at every step (FHIRPath-style)."""
    if isinstance(node, list):
        for item in node:
            yield from walk(item, path)
        return
    if not path:
        if node is not None:
            yield node
        return
    if isinstance(node, dict):
        yield from walk(node.get(path[0]), path[1:])


def _entries(param: SearchParam, element: Any) -> Iterator[IndexEntry]:
    if param.kind == "token":
        yield from (IndexEntry(param.name, system, code) for system, code in tokens(element))
    elif param.kind == "string":
        yield from (IndexEntry(param.name, value=fold(s), exact=s) for s in strings(element))
    elif param.kind == "date":
        yield from _date_entries(param, element)
    elif param.kind == "quantity":
        yield from _quantity_entries(param, element)
    elif param.kind == "reference":
        entry = _reference_entry(param, element)
        if entry is not None:
            yield entry


def tokens(element: Any) -> Iterator[tuple[str | None, str]]:
    """(system, code) pairs of a code, Coding, CodeableConcept or Identifier."""
    if isinstance(element, str):
        yield None, element
    elif isinstance(element, dict):
        codings = element.get("coding")
        for coding in codings if isinstance(codings, list) else []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                yield _opt_str(coding.get("system")), coding["code"]
        for field in ("code", "value"):  # Coding.code / Identifier.value
            if isinstance(element.get(field), str):
                yield _opt_str(element.get("system")), element[field]


def strings(element: Any) -> Iterator[str]:
    """Searchable strings; a HumanName contributes each of its parts and its text."""
    if isinstance(element, str):
        yield element
    elif isinstance(element, dict):
        for field in ("text", "family", "given", "prefix", "suffix"):
            for part in walk(element, (field,)):
                if isinstance(part, str):
                    yield part


def parse_local_reference(reference: str) -> tuple[str, str] | None:
    """``Type/id`` (optionally ``Type/id/_history/v``) → (type, id); anything else None."""
    parts = reference.split("/")
    if len(parts) in (2, 4) and is_resource_type(parts[0]) and is_fhir_id(parts[1]):
        if len(parts) == 4 and parts[2] != "_history":
            return None
        return parts[0], parts[1]
    return None


def _reference_entry(param: SearchParam, element: Any) -> IndexEntry | None:
    if not isinstance(element, dict) or not isinstance(element.get("reference"), str):
        return None
    reference = element["reference"]
    local = parse_local_reference(reference)
    if local is not None:
        if param.target is not None and local[0] != param.target:
            return None
        return IndexEntry(param.name, ref_type=local[0], ref_id=local[1])
    if "://" in reference:
        if param.target is not None and f"/{param.target}/" not in reference:
            return None
        return IndexEntry(param.name, value=reference)
    return None


def _date_entries(param: SearchParam, element: Any) -> Iterator[IndexEntry]:
    try:
        if isinstance(element, str):
            found = parse_range(element)
        elif isinstance(element, dict):
            period = period_range(element)
            if period is None:
                return
            found = period
        else:
            return
    except ValueError:
        return  # not a date: validation on write reports it; the index just skips it
    yield IndexEntry(param.name, low=found.low, high=found.high)


def _quantity_entries(param: SearchParam, element: Any) -> Iterator[IndexEntry]:
    """A Quantity is found by its code (with its system) and by its unit (any system)."""
    if not isinstance(element, dict):
        return
    number = _finite(element.get("value"))
    if number is None:
        return
    code, unit = _opt_str(element.get("code")), _opt_str(element.get("unit"))
    yield IndexEntry(param.name, system=_opt_str(element.get("system")), value=code,
                     number=number)
    if unit is not None and unit != code:
        yield IndexEntry(param.name, value=unit, number=number)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
