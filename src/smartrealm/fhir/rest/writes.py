"""create, update (and update-as-create) and delete (R4 http.html#create, #update, #delete),
with the SMART write rules of ``access.py``. Each write runs in one database transaction in
which the scope checks see the resource exactly as stored; a refusal rolls it back.

The ``*_in`` functions work inside a caller's ``WriteSession``, so a transaction Bundle runs
the very same steps for each of its entries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from smartrealm.fhir.access import Permit, authorize, check_named_patients, require_match
from smartrealm.fhir.bodies import check_id, for_create, for_update, new_id, parsed
from smartrealm.fhir.errors import (
    Conflict,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
)
from smartrealm.fhir.http.reply import FhirResponse, written
from smartrealm.fhir.interactions import writable
from smartrealm.fhir.link_reports import LinkReporter
from smartrealm.fhir.linking import check_link_kept, collecting, guard_link
from smartrealm.fhir.repository import (
    ResourceRepository,
    StoredResource,
    VersionConflictError,
    WriteSession,
)
from smartrealm.fhir.rest.conditional import (
    condition_key,
    existing_match,
    parse_condition,
    serialised,
)
from smartrealm.fhir.settings import FhirSettings
from smartrealm.fhir.validation import validate_resource
from smartrealm.fhir.versioning import outcome_information, return_preference
from smartrealm.guard import AccessContext

# --------------------------------------------------------------------------- in a session


def _in_scope(session: WriteSession, permit: Permit, resource_type: str,
              resource_id: str, what: str) -> None:
    require_match(permit, lambda r: session.matches(resource_type, resource_id, (r,)), what)


def create_in(session: WriteSession, permit: Permit, resource: dict[str, Any]) -> StoredResource:
    resource_type, resource_id = resource["resourceType"], resource["id"]
    if session.get(resource_type, resource_id) is not None:
        raise Conflict(f"{resource_type}/{resource_id} exists already")
    check_link_kept(permit, None, resource)
    version = session.put(resource)
    _in_scope(session, permit, resource_type, resource_id, f"creating this {resource_type}")
    return version


def update_in(session: WriteSession, permit: Permit, resource: dict[str, Any],
              if_match: int | None) -> tuple[StoredResource, bool]:
    """The new version, and whether it brought the resource into existence (201)."""
    resource_type, resource_id = resource["resourceType"], resource["id"]
    current = session.get(resource_type, resource_id)
    if if_match is not None and (current is None or current.version_id != if_match):
        raise PreconditionFailed(f'{resource_type}/{resource_id} is not at version '
                                 f'W/"{if_match}"')
    live = current is not None and not current.deleted
    if live:  # nothing outside the token's scopes may be overwritten
        _in_scope(session, permit, resource_type, resource_id,
                  f"changing {resource_type}/{resource_id}")
    check_link_kept(permit, current.resource if current is not None and live else None,
                    resource)
    version = session.put(resource)
    # ... and nothing may be written (or moved) outside them.
    _in_scope(session, permit, resource_type, resource_id, f"writing this {resource_type}")
    return version, not live


def delete_in(session: WriteSession, permit: Permit, resource_type: str, resource_id: str,
              if_match: int | None) -> StoredResource | None:
    """The deletion version; None when the resource was deleted already (R4: no effect)."""
    current = session.get(resource_type, resource_id)
    if current is None:
        raise NotFound(f"{resource_type}/{resource_id} is not known")
    if if_match is not None and current.version_id != if_match:
        raise PreconditionFailed(f'{resource_type}/{resource_id} is not at version '
                                 f'W/"{if_match}"')
    if current.deleted:
        return None
    _in_scope(session, permit, resource_type, resource_id,
              f"deleting {resource_type}/{resource_id}")
    return session.delete(resource_type, resource_id)


# --------------------------------------------------------------------------- the service


class WriteService:
    def __init__(self, settings: FhirSettings, repository: ResourceRepository,
                 links: LinkReporter | None = None) -> None:
        self.settings = settings
        self.repository = repository
        self.links = links  # where committed changes of a Patient's link go (linking.py)

    def permit(self, ctx: AccessContext, resource_type: str, letter: str) -> Permit:
        """The type must be served (404) and this server writable (405) before scopes."""
        if resource_type not in self.settings.resource_types:
            raise NotFound(f"this server does not serve {resource_type[:64]!r} resources")
        if not writable(self.settings.server.profile):
            raise MethodNotAllowed(f"{self.settings.server.name} is read-only: resources "
                                   f"cannot be created, updated or deleted here")
        permit = authorize(ctx, resource_type, letter, base_url=self.settings.base_url)
        return guard_link(permit, ctx, letter, self.settings.realm.patient_identifier_system)

    @contextmanager
    def session(self, if_match: int | None = None) -> Iterator[WriteSession]:
        with collecting(self.settings.realm.patient_identifier_system) as changes:
            try:
                with self.repository.transaction() as session:
                    yield session
            except VersionConflictError as exc:
                if if_match is not None:
                    raise PreconditionFailed(str(exc)) from None
                raise Conflict(f"{exc}; retry the request") from None
        # Reached only once the transaction has committed.
        if self.links is not None and changes.changes:
            self.links.report(changes.changes)

    def create(self, ctx: AccessContext, resource_type: str, body: Any,
               prefer: str | None = None, if_none_exist: str | None = None) -> FhirResponse:
        permit = self.permit(ctx, resource_type, "c")
        seen = None if if_none_exist is None else self._search_permit(ctx, resource_type)
        resource = for_create(validate_resource(parsed(body), resource_type), new_id())
        if seen is not None and if_none_exist is not None:
            return self._create_if_none_exist(ctx, permit, seen, resource, if_none_exist,
                                              prefer)
        with self.session() as session:
            version = create_in(session, permit, resource)
        return written(version, 201, prefer, self.settings.base_url,
                       f"created {resource_type}/{resource['id']}")

    def _search_permit(self, ctx: AccessContext, resource_type: str) -> Permit:
        """A conditional create searches as the token would (conditional.py): ``s``."""
        try:
            return authorize(ctx, resource_type, "s", base_url=self.settings.base_url)
        except Forbidden:
            raise Forbidden(f"a conditional create (If-None-Exist) is a search first: it "
                            f"needs a scope that allows searching {resource_type}") from None

    def _create_if_none_exist(self, ctx: AccessContext, permit: Permit, seen: Permit,
                              resource: dict[str, Any], if_none_exist: str,
                              prefer: str | None) -> FhirResponse:
        """R4 http.html#ccreate: 0 matches → create (201); 1 → 200 with it; more → 412."""
        resource_type = resource["resourceType"]
        criteria = parse_condition(resource_type, if_none_exist,
                                   base_url=self.settings.base_url)
        check_named_patients(seen, ctx, criteria)
        key = condition_key(resource_type, criteria)
        with serialised(key), self.session() as session:  # until the commit
            existing = existing_match(session, seen, criteria, key)
            version = existing or create_in(session, permit, resource)
        if existing is not None:
            return written(existing, 200, prefer, self.settings.base_url,
                           f"{resource_type}/{existing.resource['id']} matches "
                           "If-None-Exist: nothing was created")
        return written(version, 201, prefer, self.settings.base_url,
                       f"created {resource_type}/{resource['id']}")

    def update(self, ctx: AccessContext, resource_type: str, resource_id: str, body: Any,
               *, if_match: int | None = None, prefer: str | None = None) -> FhirResponse:
        permit = self.permit(ctx, resource_type, "u")
        check_id(resource_id)
        resource = for_update(validate_resource(parsed(body), resource_type), resource_id)
        with self.session(if_match) as session:
            version, created = update_in(session, permit, resource, if_match)
        verb = "created" if created else "updated"
        return written(version, 201 if created else 200, prefer, self.settings.base_url,
                       f"{verb} {resource_type}/{resource_id}")

    def delete(self, ctx: AccessContext, resource_type: str, resource_id: str, *,
               if_match: int | None = None, prefer: str | None = None) -> FhirResponse:
        permit = self.permit(ctx, resource_type, "d")
        check_id(resource_id)
        with self.session(if_match) as session:
            version = delete_in(session, permit, resource_type, resource_id, if_match)
        headers = {} if version is None else {"ETag": f'W/"{version.version_id}"'}
        if return_preference(prefer) == "OperationOutcome":
            return FhirResponse(outcome_information(f"deleted {resource_type}/{resource_id}"),
                                200, headers, version)
        return FhirResponse(None, 204, headers, version)
