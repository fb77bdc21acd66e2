"""Inferno's assertions, one function per shared check, so every group applies them alike
(spec §4.4 for the token response body, §4.1 for headers and CORS)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fhir.resources import get_fhir_model_class
from fhir.resources.resource import Resource

from tests.conformance.inferno import ORIGIN

# Inferno 2.2's fhirContext rules (spec §4.4).
REFERENCE = re.compile(r"(?P<type>[A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?")
CANONICAL = re.compile(r"http.*/(?P<type>[A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(\|.+)?")


def known_resource_type(name: str) -> bool:
    try:
        model = get_fhir_model_class(name)
    except (ValueError, KeyError):
        return False
    return issubclass(model, Resource)


def check_token_response_body(body: dict[str, Any], requested_scope: str, *,
                              relative_context: bool = True) -> None:
    """``smart_token_response_body_stu2_2`` (spec §4.4): required members present with the
    right types, ``token_type`` bearer, every requested scope granted, 2.2 fhirContext
    (``relative_context=False``: a multi-server response whose ``launch-full-url`` items are
    absolute on purpose, spec §6.5/§14.2)."""
    for name in ("access_token", "token_type", "expires_in", "scope"):
        assert body.get(name) not in (None, ""), f"{name} missing"
    for name in ("access_token", "token_type", "scope"):
        assert isinstance(body[name], str), name
    if "refresh_token" in body:
        assert isinstance(body["refresh_token"], str) and body["refresh_token"]
    assert isinstance(body["expires_in"], int) and not isinstance(body["expires_in"], bool)
    assert body["expires_in"] > 0
    assert body["token_type"].lower() == "bearer"
    missing = set(requested_scope.split()) - set(body["scope"].split())
    assert not missing, f"requested scopes not granted: {missing}"
    if "patient" in body:  # an id, not a reference (§4.4)
        assert isinstance(body["patient"], str) and "/" not in body["patient"]
    if "fhirContext" in body and relative_context:
        check_fhir_context_stu2_2(body["fhirContext"])
    for entry in body.get("authorization_details", []):  # §10.1
        assert entry["type"] == "smart_on_fhir" and entry["locations"], entry
        assert entry["fhirVersions"] and isinstance(entry["scope"], str), entry


def check_fhir_context_stu2_2(items: Any) -> None:
    """Inferno 2.2: an array of objects, each with ``reference`` (relative, a known type,
    an id of 1-64 characters), ``canonical`` (``http…/Type/id[|version]``) or ``identifier``
    (an object); ``type`` a known resource type; ``role`` never empty."""
    assert isinstance(items, list)
    for item in items:
        assert isinstance(item, dict) and {"reference", "canonical", "identifier"} & set(item)
        if "reference" in item:
            reference = item["reference"]
            assert isinstance(reference, str) and not reference.startswith("http"), reference
            match = REFERENCE.fullmatch(reference)
            assert match and known_resource_type(match.group("type")), reference
        if "canonical" in item:
            match = CANONICAL.fullmatch(item["canonical"])
            assert match and known_resource_type(match.group("type")), item["canonical"]
        if "identifier" in item:
            assert isinstance(item["identifier"], dict)
        if "type" in item:
            assert known_resource_type(item["type"]), item["type"]
        if "role" in item:
            assert isinstance(item["role"], str) and item["role"]


def check_no_store(response: httpx.Response) -> None:
    """``smart_token_response_headers``: Cache-Control contains no-store and Pragma
    contains no-cache (case-insensitive)."""
    assert "no-store" in response.headers.get("cache-control", "").lower()
    assert "no-cache" in response.headers.get("pragma", "").lower()


def check_cors(response: httpx.Response, origin: str = ORIGIN) -> None:
    """Access-Control-Allow-Origin equals the request's Origin or ``*``."""
    assert response.headers.get("access-control-allow-origin") in (origin, "*"), \
        dict(response.headers)


def check_json(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def check_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    """An RFC 6749 §5.2 error: the exact status and code, JSON, never cacheable."""
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text
