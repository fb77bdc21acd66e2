"""Validating what an EHR operator asks a launch to carry (the launch API's JSON body and
the `smartrealm launch` options), so that only well-formed context reaches a token response.

The fhirContext rules are SMART 2.2 §4.4 (and the Inferno 2.2 checks listed there): each item
an object with at least one of ``reference`` (relative ``Type/id``), ``canonical`` (absolute
URL ending in ``Type/id[|version]``) or ``identifier`` (an object); ``type`` a resource type;
``role`` absent, ``launch`` or an absolute URI, never empty; Patient and Encounter only with a
role other than ``launch`` (they belong in the top-level ``patient``/``encounter``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from smartrealm.core.defaults import LAUNCH_MAX_CONTEXT_ITEMS as MAX_ITEMS
from smartrealm.core.defaults import LAUNCH_MAX_TEXT as MAX_TEXT
from smartrealm.core.defaults import LAUNCH_MAX_URL as MAX_URL
from smartrealm.core.fhir_ids import FHIR_ID, ID_PATTERN, RESOURCE_TYPE, TYPE_PATTERN
from smartrealm.oauth.errors import InvalidRequest
from smartrealm.oauth.resources import is_absolute_uri

REFERENCE = re.compile(rf"(?P<type>{TYPE_PATTERN})/{ID_PATTERN}(/_history/{ID_PATTERN})?")
CANONICAL = re.compile(rf"https?://\S+/(?P<type>{TYPE_PATTERN})/{ID_PATTERN}(\|\S+)?")
HTTP_URL = re.compile(r"https?://[^\s#/?]+(/[^\s#]*)?")
ITEM_KEYS = frozenset({"reference", "canonical", "identifier", "type", "role"})
TOP_LEVEL_TYPES = frozenset({"Patient", "Encounter"})
LAUNCH_ROLE = "launch"
INPUT_KEYS = frozenset({"user", "patient", "encounter", "fhirContext", "need_patient_banner",
                        "smart_style_url", "intent", "client_id", "launch_url"})


@dataclass(frozen=True)
class LaunchInput:
    """A validated request for a launch. ``launch_url`` is the app's launch URL when the
    caller names it directly; otherwise ``client_id``'s registered one is used."""

    patient: str
    user: str | None = None
    encounter: str | None = None
    fhir_context: tuple[dict[str, Any], ...] = ()
    need_patient_banner: bool = True
    smart_style_url: str | None = None
    intent: str | None = None
    client_id: str | None = None
    launch_url: str | None = None


def _text(data: dict[str, Any], name: str, *, required: bool = False,
          limit: int = MAX_TEXT) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidRequest(f"{name} must be a non-empty string of at most {limit} "
                             "characters")
    if not value.isprintable():
        raise InvalidRequest(f"{name} must not contain control characters")
    return value


def fhir_id(value: str | None, name: str) -> str | None:
    if value is not None and not FHIR_ID.fullmatch(value):
        raise InvalidRequest(f"{name} must be a FHIR id ([A-Za-z0-9-.], 1 to 64 characters)")
    return value


def http_url(value: str | None, name: str) -> str | None:
    """An absolute http(s) URL without fragment (an app launch URL, a style URL)."""
    if value is None:
        return None
    if not HTTP_URL.fullmatch(value):
        raise InvalidRequest(f"{name} must be an absolute http(s) URL without fragment")
    return value


def parse_launch_input(data: Any) -> LaunchInput:
    """The launch API's JSON body; every problem is ``invalid_request`` naming the field."""
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    unknown = sorted(set(data) - INPUT_KEYS)
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
    banner = data.get("need_patient_banner", True)
    if not isinstance(banner, bool):
        raise InvalidRequest("need_patient_banner must be true or false")
    return LaunchInput(
        patient=fhir_id(_text(data, "patient", required=True), "patient") or "",
        user=_text(data, "user"),
        encounter=fhir_id(_text(data, "encounter"), "encounter"),
        fhir_context=parse_fhir_context(data.get("fhirContext", [])),
        need_patient_banner=banner,
        smart_style_url=http_url(_text(data, "smart_style_url", limit=MAX_URL),
                                 "smart_style_url"),
        intent=_text(data, "intent"),
        client_id=_text(data, "client_id"),
        launch_url=http_url(_text(data, "launch_url", limit=MAX_URL), "launch_url"),
    )


# ---------------------------------------------------------------- fhirContext (§4.4)


def parse_fhir_context(items: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(items, list):
        raise InvalidRequest("fhirContext must be an array of objects")
    if len(items) > MAX_ITEMS:
        raise InvalidRequest(f"fhirContext has more than {MAX_ITEMS} items")
    return tuple(fhir_context_item(item, i) for i, item in enumerate(items))


def fhir_context_item(item: Any, index: int) -> dict[str, Any]:
    where = f"fhirContext[{index}]"
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where} must be an object")
    if set(item) - ITEM_KEYS:
        raise InvalidRequest(f"{where} may only have {', '.join(sorted(ITEM_KEYS))}")
    if not {"reference", "canonical", "identifier"} & set(item):
        raise InvalidRequest(f"{where} needs a reference, canonical or identifier")
    types = {_reference_type(item, where), _canonical_type(item, where), _type(item, where)}
    types.discard(None)
    if len(types) > 1:
        raise InvalidRequest(f"{where}: type does not match the reference or canonical")
    _check_identifier(item, where)
    role = _role(item, where)
    if types & TOP_LEVEL_TYPES and role == LAUNCH_ROLE:
        # §4.4: the launch Patient and Encounter go in the top-level patient/encounter.
        raise InvalidRequest(f"{where}: Patient and Encounter need a role other than launch")
    return dict(item)


def _reference_type(item: dict[str, Any], where: str) -> str | None:
    if "reference" not in item:
        return None
    match = REFERENCE.fullmatch(item["reference"]) if isinstance(item["reference"], str) \
        else None
    if match is None:
        # Inferno 2.2: a relative Type/id, never an absolute URL.
        raise InvalidRequest(f"{where}.reference must be a relative reference Type/id")
    return match.group("type")


def _canonical_type(item: dict[str, Any], where: str) -> str | None:
    if "canonical" not in item:
        return None
    value = item["canonical"]
    match = CANONICAL.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidRequest(f"{where}.canonical must be an http(s) URL ending in "
                             "Type/id[|version]")
    return match.group("type")


def _type(item: dict[str, Any], where: str) -> str | None:
    if "type" not in item:
        return None
    value = item["type"]
    if not isinstance(value, str) or not RESOURCE_TYPE.fullmatch(value):
        raise InvalidRequest(f"{where}.type must be a resource type")
    return value


def _check_identifier(item: dict[str, Any], where: str) -> None:
    if "identifier" not in item:
        return
    value = item["identifier"]
    parts = {k: v for k, v in value.items() if k in ("system", "value")} \
        if isinstance(value, dict) else {}
    if not parts or set(value) - {"system", "value"} or not all(
            isinstance(v, str) and v for v in parts.values()):
        raise InvalidRequest(f"{where}.identifier must be an object with a string system "
                             "and/or value")


def _role(item: dict[str, Any], where: str) -> str:
    """Absent means ``launch``; relative roles are reserved for SMART, so anything other
    than ``launch`` must be an absolute URI (§4.4)."""
    if "role" not in item:
        return LAUNCH_ROLE
    role = item["role"]
    if not isinstance(role, str) or not role:
        raise InvalidRequest(f"{where}.role must be a non-empty string")
    if role != LAUNCH_ROLE and not is_absolute_uri(role):
        raise InvalidRequest(f"{where}.role must be launch or an absolute URI")
    return role
