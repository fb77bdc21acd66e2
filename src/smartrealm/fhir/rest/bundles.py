"""batch and transaction (R4 http.html#transaction) at ``POST [base]``.

SMART §5.1: "batch and transaction have no scope of their own; each contained request is
checked on its own". So every entry goes through the same code as the interaction sent
alone: the same permits, validation, compartment and granular checks.

* **batch**: entries are independent; each has its own status, and a failed one carries an
  OperationOutcome (``response.outcome``). Any interaction, reads included.
* **transaction**: all or nothing, in ONE database transaction. Writes only (POST, PUT,
  DELETE): a read's failure could not be undone, so GET entries are refused (400; send them
  in a batch). Processed DELETE, POST, PUT (R4 order); creates get their ids first and every
  ``urn:uuid:`` reference is rewritten to them. The first failing entry — validation, a 403,
  a 412 — fails the whole Bundle with its status and an OperationOutcome naming it
  (``Bundle.entry[n]``); nothing is stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smartrealm.fhir.bodies import for_create, for_update
from smartrealm.fhir.errors import BadRequest, FhirError
from smartrealm.fhir.http.reply import FhirResponse, status_line, written
from smartrealm.fhir.repository import WriteSession
from smartrealm.fhir.rest.bundle_entries import (
    Entry,
    assign_identities,
    check_distinct,
    parse_bundle,
    parse_entry,
    resolve_references,
)
from smartrealm.fhir.rest.handlers import FhirService
from smartrealm.fhir.rest.history import HistoryService, parse_history_params
from smartrealm.fhir.rest.writes import WriteService, create_in, delete_in, update_in
from smartrealm.fhir.validation import validate_resource
from smartrealm.guard import AccessContext

_ORDER = {"delete": 0, "create": 1, "update": 2}


class BundleService:
    def __init__(self, reads: FhirService, writes: WriteService,
                 history: HistoryService) -> None:
        self.reads = reads
        self.writes = writes
        self.history = history
        self.base_url = writes.settings.base_url

    def process(self, ctx: AccessContext, body: bytes, prefer: str | None = None) -> FhirResponse:
        kind, raw_entries = parse_bundle(body)
        if kind == "batch":
            return self.batch(ctx, raw_entries, prefer)
        return self.transaction(ctx, raw_entries, prefer)

    # ------------------------------------------------------------------ batch

    def batch(self, ctx: AccessContext, raw_entries: list[Any], prefer: str | None) -> FhirResponse:
        entries = []
        for index, raw in enumerate(raw_entries):
            try:
                reply = self._one(ctx, parse_entry(index, raw, self.base_url), prefer)
            except FhirError as error:
                reply = FhirResponse(error.outcome(), error.status)
            entries.append(self._response_entry(reply))
        return _bundle("batch-response", entries)

    def _one(self, ctx: AccessContext, entry: Entry, prefer: str | None) -> FhirResponse:
        rtype, rid = entry.resource_type or "", entry.resource_id or ""
        actions: dict[str, Callable[[], FhirResponse]] = {
            "read": lambda: self.reads.read(ctx, rtype, rid),
            "search-type": lambda: self.reads.search(ctx, rtype, list(entry.params)),
            "vread": lambda: self.history.vread(ctx, rtype, rid, entry.version or ""),
            "history-instance": lambda: self.history.instance(
                ctx, rtype, rid, parse_history_params(entry.params)),
            "history-type": lambda: self.history.type_history(
                ctx, rtype, parse_history_params(entry.params)),
            "history-system": lambda: self.history.system(
                ctx, parse_history_params(entry.params)),
            "create": lambda: self.writes.create(ctx, rtype, entry.resource, prefer,
                                                 entry.if_none_exist),
            "update": lambda: self.writes.update(ctx, rtype, rid, entry.resource,
                                                 if_match=entry.if_match, prefer=prefer),
            "delete": lambda: self.writes.delete(ctx, rtype, rid, if_match=entry.if_match),
        }
        return actions[entry.interaction]()

    # ------------------------------------------------------------------ transaction

    def transaction(self, ctx: AccessContext, raw_entries: list[Any],
                    prefer: str | None) -> FhirResponse:
        current: Entry | None = None
        try:
            entries = self._prepared(raw_entries)
            replies: dict[int, FhirResponse] = {}
            with self.writes.session() as session:
                for current in sorted(entries, key=lambda e: _ORDER[e.interaction]):
                    replies[current.index] = self._write(ctx, session, current, prefer)
                current = None  # a failure from here on (the commit) is no entry's
        except FhirError as error:
            return _failure(error, current, self.base_url)
        return _bundle("transaction-response",
                       [self._response_entry(replies[i]) for i in range(len(entries))])

    def _prepared(self, raw_entries: list[Any]) -> list[Entry]:
        """Parsed, checked, identified and resolved; the first problem fails them all."""
        entries: list[Entry] = []
        for index, raw in enumerate(raw_entries):
            try:
                entry = parse_entry(index, raw, self.base_url)
            except FhirError as error:
                raise _at(error, f"Bundle.entry[{index}]") from None
            if entry.method == "GET":
                raise BadRequest(f"{entry.where}: a transaction may only write (POST, PUT, "
                                 f"DELETE); send reads in a batch")
            if entry.if_none_exist is not None:
                # Its match would decide what the entry's urn: identity means to every
                # other entry; not done here: refused, never ignored.
                raise BadRequest(f"{entry.where}.request.ifNoneExist: a conditional create "
                                 "is not supported inside a transaction; send it alone or "
                                 "in a batch")
            entries.append(entry)
        entries, identities = assign_identities(entries)
        check_distinct(entries)
        for entry in entries:
            if entry.resource is not None:
                resolve_references(entry.resource, identities, entry.where)
        return entries

    def _write(self, ctx: AccessContext, session: WriteSession, entry: Entry,
               prefer: str | None) -> FhirResponse:
        rtype, rid = entry.resource_type or "", entry.resource_id or ""
        letter = {"create": "c", "update": "u", "delete": "d"}[entry.interaction]
        permit = self.writes.permit(ctx, rtype, letter)
        if entry.interaction == "delete":
            version = delete_in(session, permit, rtype, rid, entry.if_match)
            return FhirResponse(None, 204, {}, version)
        resource = validate_resource(entry.resource, rtype)
        if entry.interaction == "create":
            stored = create_in(session, permit, for_create(resource, rid))
            return written(stored, 201, prefer, self.base_url, f"created {rtype}/{rid}")
        stored, created = update_in(session, permit, for_update(resource, rid), entry.if_match)
        return written(stored, 201 if created else 200, prefer, self.base_url,
                       f"{'created' if created else 'updated'} {rtype}/{rid}")

    # ------------------------------------------------------------------ responses

    def _response_entry(self, reply: FhirResponse) -> dict[str, Any]:
        response: dict[str, Any] = {"status": status_line(reply.status)}
        entry: dict[str, Any] = {}
        version = reply.version
        if version is not None:
            resource = version.resource
            path = f"{resource['resourceType']}/{resource['id']}"
            entry["fullUrl"] = f"{self.base_url}/{path}"
            if not version.deleted:
                response["location"] = f"{path}/_history/{version.version_id}"
            response["etag"] = f'W/"{version.version_id}"'
            response["lastModified"] = version.last_updated
        elif "ETag" in reply.headers:
            response["etag"] = reply.headers["ETag"]
        if reply.status >= 400:
            response["outcome"] = reply.body
        elif reply.body is not None:
            entry["resource"] = reply.body
        entry["response"] = response
        return entry


def _bundle(kind: str, entries: list[dict[str, Any]]) -> FhirResponse:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": kind}
    if entries:
        bundle["entry"] = entries
    return FhirResponse(bundle)


def _at(error: FhirError, where: str) -> FhirError:
    """The same error, its diagnostics prefixed with the entry it came from."""
    if not error.diagnostics.startswith("Bundle.entry["):
        error.diagnostics = f"{where}: {error.diagnostics}"
        error.args = (error.diagnostics,)
    return error


def _failure(error: FhirError, entry: Entry | None, base_url: str) -> FhirResponse:
    """The whole transaction's answer: the failing entry's status, and an outcome whose
    issues name that entry (``Bundle.entry[2].resource.code`` for a validation issue)."""
    outcome = error.outcome()
    if entry is not None:
        for issue in outcome["issue"]:
            issue["diagnostics"] = f"{entry.where}: {issue.get('diagnostics', '')}"
            issue["expression"] = [_inside(entry, e) for e in issue.get("expression", [])] \
                or [entry.where]
    return FhirResponse(outcome, error.status, error.headers(base_url))


def _inside(entry: Entry, expression: str) -> str:
    _, dot, rest = expression.partition(".")
    return f"{entry.where}.resource" + (f".{rest}" if dot else "")
