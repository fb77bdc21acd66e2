"""What an interaction answers, before any web framework renders it: ``FhirResponse``, the
one answer type of the built-in server, the proxy and the entries of a batch, rendered by
``fhir.http.render``. A read may carry the stored resource already encoded (no parse, no
encode); a write may answer with no body at all (204, ``Prefer: return=minimal``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smartrealm.fhir.repository import StoredResource
from smartrealm.fhir.versioning import outcome_information, return_preference, version_headers

REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
           401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict", 410: "Gone",
           412: "Precondition Failed", 413: "Payload Too Large",
           415: "Unsupported Media Type", 422: "Unprocessable Entity",
           500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass(frozen=True)
class FhirResponse:
    payload: dict[str, Any] | StoredResource | None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    version: StoredResource | None = None  # the version a write stored (Bundle responses)

    @property
    def body(self) -> dict[str, Any] | None:
        if isinstance(self.payload, StoredResource):
            return self.payload.resource
        return self.payload

    @property
    def text(self) -> str | None:
        """The body already encoded, when the store kept it (StoredResource.text)."""
        return self.payload.text if isinstance(self.payload, StoredResource) else None


def status_line(status: int) -> str:
    """``Bundle.entry.response.status``: the code and its reason phrase."""
    return f"{status} {REASONS.get(status, '')}".rstrip()


def written(version: StoredResource, status: int, prefer: str | None, base_url: str,
            message: str) -> FhirResponse:
    """The answer to a create or update (R4 http.html#ops: ``Prefer: return=``)."""
    headers = version_headers(version, base_url, location=True)
    wanted = return_preference(prefer)
    if wanted == "minimal":
        return FhirResponse(None, status, headers, version)
    if wanted == "OperationOutcome":
        return FhirResponse(outcome_information(message), status, headers, version)
    return FhirResponse(version.resource, status, headers, version)
