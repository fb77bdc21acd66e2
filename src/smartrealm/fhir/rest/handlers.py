"""FHIR interactions with no web framework: each takes the caller's AccessContext and
returns a FhirResponse or raises a FhirError. Synchronous (the store is synchronous); the
web layer runs them in a worker thread."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache

from smartrealm.core.fhir_ids import is_fhir_id
from smartrealm.fhir.access import authorize
from smartrealm.fhir.errors import BadRequest, Forbidden, Gone, NotFound
from smartrealm.fhir.http.reply import FhirResponse
from smartrealm.fhir.repository import ResourceRepository
from smartrealm.fhir.rest.searchset import Searcher
from smartrealm.fhir.search.query import AnyOf, Clause, IdValue
from smartrealm.fhir.settings import FhirSettings
from smartrealm.guard import AccessContext


class FhirService:
    """Read and search over one server's repository, with access control."""

    def __init__(self, settings: FhirSettings, repository: ResourceRepository) -> None:
        self.settings = settings
        self.repository = repository
        self.searcher = Searcher(settings, repository)  # fhir/rest/searchset.py

    def read(self, ctx: AccessContext, resource_type: str, resource_id: str) -> FhirResponse:
        self.check_type(resource_type)
        permit = authorize(ctx, resource_type, "r", base_url=self.settings.base_url)
        if not is_fhir_id(resource_id):
            raise BadRequest(f"{resource_id!r} is not a valid FHIR id")
        stored = self.repository.get(resource_type, resource_id)
        if stored is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
        if stored.deleted:
            raise Gone(f"{resource_type}/{resource_id} has been deleted")
        if permit.restriction is not None and not _id_grants(permit.restriction, resource_id):
            criteria = (Clause("_id", "id", (IdValue(resource_id),)), permit.restriction)
            _, total = self.repository.search(resource_type, criteria, count=0, offset=0)
            if total == 0:
                raise Forbidden(f"the token does not allow reading {resource_type}/"
                                f"{resource_id}")
        return FhirResponse(stored, headers={
            "ETag": f'W/"{stored.version_id}"',
            "Last-Modified": _http_date(stored.last_updated),
        })

    def search(self, ctx: AccessContext, resource_type: str,
               params: Sequence[tuple[str, str]], *, strict: bool = False) -> FhirResponse:
        self.check_type(resource_type)
        return FhirResponse(self.searcher.search(ctx, resource_type, params, strict=strict))

    def check_type(self, resource_type: str) -> None:
        if resource_type not in self.settings.resource_types:
            raise NotFound(f"this server does not serve {resource_type!r} resources")


def _id_grants(restriction: AnyOf, resource_id: str) -> bool:
    """Whether the restriction certainly holds for the stored, not deleted resource
    ``resource_id`` without asking the store: one of its groups is only ``_id`` clauses
    naming that id (a patient/ token reading its own Patient), which the SQL search would
    match as ``id IN (...)`` (sql/predicates.py). Saves a query on the commonest read."""
    return any(group and all(c.kind == "id" and IdValue(resource_id) in c.values
                             for c in group)
               for group in restriction.groups)


@lru_cache(maxsize=4096)  # a pure function of the stored instant, on every read
def _http_date(instant: str) -> str:
    return format_datetime(datetime.fromisoformat(instant), usegmt=True)
