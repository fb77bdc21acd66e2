"""Version headers and preferences of the FHIR REST API (R4 http.html): ``ETag: W/"n"``,
``Last-Modified``, ``Location: [base]/[type]/[id]/_history/[n]``, ``If-Match`` and
``Prefer: return=…`` (R4 http.html#ops)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from smartrealm.fhir.errors import BadRequest
from smartrealm.fhir.repository import StoredResource

_ETAG = re.compile(r'^(?:W/)?"([1-9][0-9]{0,17})"$')
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$")
RETURN_PREFERENCES = ("minimal", "representation", "OperationOutcome")


def etag(version_id: int) -> str:
    return f'W/"{version_id}"'


def http_date(instant: str) -> str:
    """RFC 9110 IMF-fixdate of a stored FHIR instant (UTC, milliseconds)."""
    return format_datetime(datetime.fromisoformat(instant).astimezone(UTC), usegmt=True)


def version_url(base_url: str, resource_type: str, resource_id: str, version_id: int) -> str:
    return f"{base_url}/{resource_type}/{resource_id}/_history/{version_id}"


def version_headers(version: StoredResource, base_url: str, *,
                    location: bool = False) -> dict[str, str]:
    headers = {"ETag": etag(version.version_id),
               "Last-Modified": http_date(version.last_updated)}
    if location:
        resource = version.resource
        headers["Location"] = version_url(base_url, resource["resourceType"], resource["id"],
                                          version.version_id)
    return headers


def parse_if_match(value: str | None) -> int | None:
    """``If-Match: W/"3"`` (or the strong ``"3"``) → 3; absent → None; anything else 400."""
    if value is None:
        return None
    match = _ETAG.match(value.strip())
    if match is None:
        raise BadRequest(f'If-Match must be a version ETag such as W/"1", not {value[:40]!r}')
    return int(match.group(1))


def return_preference(prefer: str | None) -> str | None:
    """The ``return`` token of a ``Prefer`` header (RFC 7240), or None."""
    for part in (prefer or "").replace(";", ",").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "return":
            wanted = value.strip().strip('"')
            for known in RETURN_PREFERENCES:
                if wanted.lower() == known.lower():
                    return known
    return None


def parse_instant(name: str, value: str) -> str:
    """A FHIR instant parameter (``_since``) as the stored UTC form, for comparison."""
    if not _INSTANT.match(value):
        raise BadRequest(f"{name} must be a FHIR instant such as 2025-01-31T12:00:00Z")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} is not a valid instant") from None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def outcome_information(text: str) -> dict[str, Any]:
    """The body of ``Prefer: return=OperationOutcome`` for a successful write."""
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational",
                       "diagnostics": text}]}
