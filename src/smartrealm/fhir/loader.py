"""Bulk loading into one server's store (``smartrealm load``): NDJSON (one resource a line,
the FHIR Bulk Data format) or one JSON document (a Bundle of any type, or one resource).

Every resource is validated like an API write (validation.py); a resource that fails is
reported with its line (NDJSON) or entry (Bundle) and skipped, the others are stored. A
resource without an id gets one; in a Bundle, ``urn:uuid:`` fullUrls become those ids and
references to them are rewritten (Synthea's transaction Bundles load as they are). The
store is written in chunks, each one database transaction."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .bundle_entries import URN_PREFIXES, resolve_references
from .errors import FhirError
from .repository import ResourceRepository
from .validation import parse_json, validate_resource
from .writes import check_id, new_id

CHUNK = 1000
NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.txt")


@dataclass(frozen=True)
class Item:
    where: str                 # "line 12" or "entry 3"
    value: Any = None
    error: str | None = None   # the item could not even be parsed


@dataclass
class LoadReport:
    loaded: Counter[str] = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (where, message)

    @property
    def total(self) -> int:
        return sum(self.loaded.values())


def read_items(path: Path) -> Iterator[Item]:
    """The file's resources, in order, whatever the format (see the module docstring)."""
    with path.open("rb") as stream:
        if _is_ndjson(path, stream):
            yield from _ndjson(stream)
        else:
            yield from _document(stream.read())


def _is_ndjson(path: Path, stream: BinaryIO) -> bool:
    if path.name.lower().endswith(NDJSON_SUFFIXES):
        return True
    if path.name.lower().endswith(".json"):
        return False
    first = stream.readline()
    stream.seek(0)
    try:
        value = json.loads(first)
    except (ValueError, RecursionError):
        return False  # the first line is not a whole document: pretty-printed JSON
    # A Bundle on one line is a document; any other whole line starts NDJSON.
    return not (isinstance(value, dict) and value.get("resourceType") == "Bundle")


def _ndjson(lines: Iterable[bytes]) -> Iterator[Item]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield Item(f"line {number}", parse_json(line))
        except FhirError as error:
            yield Item(f"line {number}", error=error.diagnostics)


def _document(body: bytes) -> Iterator[Item]:
    try:
        value = parse_json(body)
    except FhirError as error:
        yield Item("the file", error=error.diagnostics)
        return
    if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
        yield Item("the file", value)
        return
    entries = value.get("entry", [])
    resources = [(i, e.get("fullUrl"), e.get("resource")) for i, e in enumerate(entries)
                 if isinstance(e, dict)] if isinstance(entries, list) else []
    identities = _identities(resources)
    for index, _full_url, resource in resources:
        where = f"entry {index}"
        if isinstance(resource, dict):
            try:
                resource = resolve_references(resource, identities, f"Bundle.entry[{index}]")
            except FhirError as error:
                yield Item(where, error=error.diagnostics)
                continue
        yield Item(where, resource)


def _identities(resources: list[tuple[int, Any, Any]]) -> dict[str, str]:
    """Give every id-less resource an id, and map ``urn:`` fullUrls to ``Type/id``."""
    identities: dict[str, str] = {}
    for _index, full_url, resource in resources:
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            continue
        resource.setdefault("id", new_id())
        if isinstance(full_url, str) and full_url.startswith(URN_PREFIXES):
            identities[full_url] = f"{resource['resourceType']}/{resource['id']}"
    return identities


def checked(item: Item, served: tuple[str, ...]) -> dict[str, Any]:
    """The item's resource, validated; FhirError when it cannot be stored."""
    resource = validate_resource(item.value)
    if resource["resourceType"] not in served:
        raise FhirError(f"this server does not serve {resource['resourceType']} resources")
    resource.setdefault("id", new_id())
    check_id(str(resource["id"]))
    return resource


def load(repository: ResourceRepository, items: Iterable[Item], served: tuple[str, ...],
         progress: Callable[[int], None] = lambda _n: None) -> LoadReport:
    """Validate and store; ``progress(n)`` after every item (n items done so far)."""
    report = LoadReport()
    chunk: list[dict[str, Any]] = []
    for done, item in enumerate(items, start=1):
        try:
            if item.error is not None:
                raise FhirError(item.error)
            chunk.append(checked(item, served))
        except FhirError as error:
            report.errors.append((item.where, error.diagnostics))
        if len(chunk) >= CHUNK:
            _store(repository, chunk, report)
        progress(done)
    _store(repository, chunk, report)
    return report


def _store(repository: ResourceRepository, chunk: list[dict[str, Any]],
           report: LoadReport) -> None:
    if chunk:
        repository.bulk_load(chunk)
        report.loaded.update(r["resourceType"] for r in chunk)
        chunk.clear()
