"""The shape of a write's body and id, shared by the built-in server's writes and the proxy's:
a valid FHIR id, the id the server assigns on create, and the id an update must carry
(R4 http.html#create, #update)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from smartrealm.core.fhir_ids import is_fhir_id
from smartrealm.fhir.errors import BadRequest
from smartrealm.fhir.validation import parse_json


def check_id(resource_id: str) -> str:
    if not is_fhir_id(resource_id):
        raise BadRequest(f"{resource_id[:80]!r} is not a valid FHIR id")
    return resource_id


def new_id() -> str:
    return str(uuid.uuid4())


def parsed(body: Any) -> Any:
    """Request bytes are parsed only once the interaction is known to be allowed, so a
    refused request answers 403/405 whatever its body."""
    return parse_json(body) if isinstance(body, bytes) else body


def for_create(resource: dict[str, Any], resource_id: str) -> dict[str, Any]:
    """R4 http.html#create: an ``id`` in the body is ignored; the server assigns one."""
    prepared = copy.deepcopy(resource)
    prepared["id"] = resource_id
    return prepared


def for_update(resource: dict[str, Any], resource_id: str) -> dict[str, Any]:
    """R4 http.html#update: the body's ``id`` SHALL be present and equal the URL's (400)."""
    if "id" not in resource:
        raise BadRequest("an update must carry the resource's id (R4 http.html#update)")
    if resource["id"] != resource_id:
        raise BadRequest(f"the resource id {str(resource['id'])[:64]!r} differs from the id "
                         f"in the URL ({resource_id!r})")
    return copy.deepcopy(resource)
