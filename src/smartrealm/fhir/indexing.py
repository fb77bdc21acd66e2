"""Turn a resource into search-index entries, one per searchable value (params.py says
which elements). The SQL store writes them next to the resource on every write."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from .params import SearchParam, search_params


class IndexEntry(NamedTuple):
    param: str
    system: str | None = None
    value: str | None = None      # token code, lower-cased string, date, or foreign URL
    ref_type: str | None = None
    ref_id: str | None = None


def index_entries(resource: dict[str, Any]) -> list[IndexEntry]:
    """Every index entry of ``resource``, de-duplicated, in a stable order."""
    entries: dict[IndexEntry, None] = {}
    for param in search_params(str(resource.get("resourceType", ""))).values():
        for element in walk(resource, param.path):
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
        yield from (IndexEntry(param.name, value=s) for s in strings(element))
    elif param.kind == "date" and isinstance(element, str):
        yield IndexEntry(param.name, value=element[:10])
    elif param.kind == "reference":
        entry = _reference_entry(param, element)
        if entry is not None:
            yield entry


def tokens(element: Any) -> Iterator[tuple[str | None, str]]:
    """(system, code) pairs of a code, Coding, CodeableConcept or Identifier."""
    if isinstance(element, str):
        yield None, element
    elif isinstance(element, dict):
        for coding in element.get("coding", []) or []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                yield _opt_str(coding.get("system")), coding["code"]
        for field in ("code", "value"):  # Coding.code / Identifier.value
            if isinstance(element.get(field), str):
                yield _opt_str(element.get("system")), element[field]


def strings(element: Any) -> Iterator[str]:
    """Lower-cased searchable strings; a HumanName contributes each of its parts."""
    if isinstance(element, str):
        yield element.lower()
    elif isinstance(element, dict):
        for field in ("text", "family", "given", "prefix", "suffix"):
            for part in walk(element, (field,)):
                if isinstance(part, str):
                    yield part.lower()


def parse_local_reference(reference: str) -> tuple[str, str] | None:
    """``Type/id`` (optionally ``Type/id/_history/v``) → (type, id); anything else None."""
    parts = reference.split("/")
    if len(parts) in (2, 4) and parts[0][:1].isupper() and parts[1]:
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


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
