"""The entries of a batch or transaction Bundle (R4 http.html#transaction): each entry's
``request`` as an interaction, and, in a transaction, ``urn:uuid:`` identities resolved to
the ids the server assigns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from smartrealm.core.defaults import BUNDLE_MAX_ENTRIES as MAX_ENTRIES
from smartrealm.fhir.bodies import check_id, new_id
from smartrealm.fhir.errors import BadRequest
from smartrealm.fhir.validation import parse_json, resource_type_of
from smartrealm.fhir.versioning import parse_if_match

URN_PREFIXES = ("urn:uuid:", "urn:oid:")
WRITES = {"POST": "create", "PUT": "update", "DELETE": "delete"}


@dataclass(frozen=True)
class Entry:
    """One entry's request. ``interaction`` is a CapabilityStatement code (``read``,
    ``vread``, ``history-instance``, ``history-type``, ``history-system``, ``search-type``,
    ``create``, ``update``, ``delete``)."""

    index: int
    method: str
    interaction: str
    resource_type: str | None = None
    resource_id: str | None = None
    version: str | None = None
    params: tuple[tuple[str, str], ...] = ()
    full_url: str | None = None
    resource: dict[str, Any] | None = None
    if_match: int | None = None
    if_none_exist: str | None = None  # a conditional create's criteria (fhir/rest/conditional.py)

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"


def parse_bundle(body: bytes) -> tuple[str, list[Any]]:
    """The Bundle's type (``batch`` or ``transaction``) and its raw entries; 400 otherwise."""
    value = parse_json(body)
    if resource_type_of(value) != "Bundle":
        raise BadRequest("POST to the base URL takes a batch or transaction Bundle")
    kind = value.get("type")
    if kind not in ("batch", "transaction"):
        raise BadRequest(f"Bundle.type must be batch or transaction, not {str(kind)[:40]!r}")
    entries = value.get("entry", [])
    if not isinstance(entries, list):
        raise BadRequest("Bundle.entry must be an array")
    if len(entries) > MAX_ENTRIES:
        raise BadRequest(f"a Bundle may hold at most {MAX_ENTRIES} entries")
    return kind, entries


def parse_entry(index: int, raw: Any, base_url: str) -> Entry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
        raise BadRequest(f"{where}.request is missing")
    request = raw["request"]
    method, url = request.get("method"), request.get("url")
    if not isinstance(method, str) or not isinstance(url, str) or not url:
        raise BadRequest(f"{where}.request needs a method and a url")
    for unsupported in ("ifNoneMatch", "ifModifiedSince"):
        if unsupported in request:
            raise BadRequest(f"{where}.request.{unsupported}: conditional interactions are "
                             f"not supported")
    entry = _route(index, method.upper(), url, base_url)
    full_url = raw.get("fullUrl")
    if_match = request.get("ifMatch")
    entry = replace(entry, full_url=full_url if isinstance(full_url, str) else None,
                    if_match=parse_if_match(if_match) if isinstance(if_match, str) else None,
                    if_none_exist=_if_none_exist(entry, request))
    if entry.method in ("POST", "PUT"):
        resource = raw.get("resource")
        if resource_type_of(resource) != entry.resource_type:
            raise BadRequest(f"{where}.resource is not a {entry.resource_type}")
        entry = replace(entry, resource=resource)
    return entry


def _if_none_exist(entry: Entry, request: dict[str, Any]) -> str | None:
    """``request.ifNoneExist``: a create's condition (R4 bundle.html: only for POST)."""
    if "ifNoneExist" not in request:
        return None
    condition = request["ifNoneExist"]
    if entry.interaction != "create" or not isinstance(condition, str) or not condition:
        raise BadRequest(f"{entry.where}.request.ifNoneExist must be a search query, on a "
                         "POST (create) only")
    return condition


def _route(index: int, method: str, url: str, base_url: str) -> Entry:
    path, query = _relative(url, base_url, index)
    parts = path.split("/")
    params = tuple(parse_qsl(query, keep_blank_values=True))
    if method in WRITES and query:
        raise BadRequest(f"Bundle.entry[{index}].request.url: conditional {method} is not "
                         f"supported")
    shape = tuple("_history" if p == "_history" else "*" for p in parts)
    interaction = _INTERACTIONS.get((method, shape))
    if interaction is None:
        raise BadRequest(f"Bundle.entry[{index}].request: {method} {url[:80]} is not a "
                         f"supported interaction")
    resource_type = None if parts[0] == "_history" else parts[0]
    resource_id = parts[1] if len(parts) > 1 and parts[1] != "_history" else None
    if resource_id is not None:
        check_id(resource_id)
    version = parts[3] if len(parts) == 4 else None
    return Entry(index, method, interaction, resource_type, resource_id, version, params)


_INTERACTIONS = {
    ("GET", ("_history",)): "history-system",
    ("GET", ("*",)): "search-type",
    ("GET", ("*", "_history")): "history-type",
    ("GET", ("*", "*")): "read",
    ("GET", ("*", "*", "_history")): "history-instance",
    ("GET", ("*", "*", "_history", "*")): "vread",
    ("POST", ("*",)): "create",
    ("PUT", ("*", "*")): "update",
    ("DELETE", ("*", "*")): "delete",
}


def _relative(url: str, base_url: str, index: int) -> tuple[str, str]:
    """``Patient/1?x=y`` (relative to the base, R4) or an absolute URL on this base."""
    if "://" in url:
        if not url.startswith(base_url + "/"):
            raise BadRequest(f"Bundle.entry[{index}].request.url is not on this server")
        url = url[len(base_url) + 1:]
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if not path or any(not p for p in path.split("/")):
        raise BadRequest(f"Bundle.entry[{index}].request.url {url[:80]!r} is malformed")
    return path, parts.query


# --------------------------------------------------------------------------- transactions


def assign_identities(entries: list[Entry]) -> tuple[list[Entry], dict[str, str]]:
    """Server ids for the creates, and ``fullUrl`` → ``Type/id`` for every ``urn:uuid:``
    / ``urn:oid:`` identity of a create or update (R4 bundle.html#references)."""
    identities: dict[str, str] = {}
    assigned: list[Entry] = []
    for entry in entries:
        if entry.interaction == "create":
            entry = replace(entry, resource_id=new_id())
        if entry.resource_id is not None and entry.full_url is not None \
                and entry.full_url.startswith(URN_PREFIXES):
            if entry.full_url in identities:
                raise BadRequest(f"{entry.where}.fullUrl {entry.full_url[:80]} is not unique")
            identities[entry.full_url] = f"{entry.resource_type}/{entry.resource_id}"
        assigned.append(entry)
    return assigned, identities


def check_distinct(entries: list[Entry]) -> None:
    """R4: a transaction in which two entries write the same resource fails (400)."""
    seen: set[tuple[str | None, str | None]] = set()
    for entry in entries:
        key = (entry.resource_type, entry.resource_id)
        if key in seen:
            raise BadRequest(f"{entry.where}: {key[0]}/{key[1]} is written twice")
        seen.add(key)


def resolve_references(resource: dict[str, Any], identities: dict[str, str],
                       where: str) -> dict[str, Any]:
    """``resource`` with every ``reference`` to a Bundle identity rewritten; a reference
    to a ``urn:`` the Bundle does not define is a 400."""
    for node in _objects(resource):
        reference = node.get("reference")
        if not isinstance(reference, str) or not reference.startswith(URN_PREFIXES):
            continue
        if reference not in identities:
            raise BadRequest(f"{where}: the reference {reference[:80]} names no entry of "
                             f"this transaction")
        node["reference"] = identities[reference]
    return resource


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object inside ``value``, without recursion."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
