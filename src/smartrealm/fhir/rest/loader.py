"""Bulk loading into one server's store (``smartrealm load``): NDJSON (one resource a line,
the FHIR Bulk Data format) or one JSON document (a Bundle of any type, or one resource).

Every resource is validated like an API write (validation.py); a resource that fails is
reported with its line (NDJSON) or entry (Bundle) and skipped, the others are stored. A
resource without an id gets one; in a Bundle, ``urn:uuid:`` fullUrls become those ids and
references to them are rewritten (Synthea's transaction Bundles load as they are). The
store is written in chunks, each one database transaction. Large inputs are parsed and
validated in worker processes while this one writes (load_pool.py)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from smartrealm.fhir.bodies import check_id, new_id
from smartrealm.fhir.errors import FhirError
from smartrealm.fhir.repository import ResourceRepository
from smartrealm.fhir.rest.bundle_entries import URN_PREFIXES, resolve_references
from smartrealm.fhir.rest.load_pool import checked_batches
from smartrealm.fhir.validation import parse_json, validate_resource

CHUNK = 5000  # resources per transaction: fewer commits, still a bounded memory
NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.txt")


@dataclass(frozen=True)
class Item:
    where: str                 # "line 12" or "entry 3"
    value: Any = None
    error: str | None = None   # the item could not even be parsed
    raw: bytes | None = None   # an NDJSON line, parsed with the validation (load_pool.py)


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
        if line.strip():
            yield Item(f"line {number}", raw=line)


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
    """The item's resource, parsed and validated; FhirError when it cannot be stored."""
    if item.error is not None:
        raise FhirError(item.error)
    resource = validate_resource(parse_json(item.raw) if item.raw is not None else item.value)
    if resource["resourceType"] not in served:
        raise FhirError(f"this server does not serve {resource['resourceType']} resources")
    resource.setdefault("id", new_id())
    check_id(str(resource["id"]))
    return resource


def load(repository: ResourceRepository, items: Iterable[Item], served: tuple[str, ...],
         progress: Callable[[int], None] = lambda _n: None,
         workers: int | None = None) -> LoadReport:
    """Validate and store; ``progress(n)`` after every item (n items done so far).
    ``workers``: validating processes for a large input (None: one per spare core; 0:
    validate in this process)."""
    report = LoadReport()
    chunk: list[dict[str, Any]] = []
    done = 0
    for batch in checked_batches(checked, items, served, workers):
        for where, resource, error in batch:
            if resource is not None:
                chunk.append(resource)
            else:
                report.errors.append((where, error or "invalid resource"))
            done += 1
            progress(done)
        if len(chunk) >= CHUNK:
            _store(repository, chunk, report)
    _store(repository, chunk, report)
    if report.total:
        repository.refresh_statistics()  # before any search plans on a stale picture
    return report


def _store(repository: ResourceRepository, chunk: list[dict[str, Any]],
           report: LoadReport) -> None:
    if chunk:
        repository.bulk_load(chunk)
        report.loaded.update(r["resourceType"] for r in chunk)
        chunk.clear()
