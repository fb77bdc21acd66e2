"""Small helpers shared by the client modules: URL handling and safe JSON decoding.
Private: the public API is re-exported from ``smartrealm.client``."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from smartrealm.core.urls import normalize_url

__all__ = ["is_absolute_http", "json_object", "normalize_url", "resolve_against_base", "strip"]

JSON = "application/json"


def strip(base_url: str) -> str:
    """A FHIR base without its trailing slash: ``{base}/metadata`` then never has ``//``."""
    return base_url.rstrip("/")


def is_absolute_http(url: str) -> bool:
    """True for an absolute http(s) URL without a fragment (RFC 8707 §2 forbids fragments
    in resource indicators; no endpoint needs one)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment


def resolve_against_base(base_url: str, url: str) -> str:
    """Resolve a (legacy) relative endpoint URL against the FHIR base (spec §1.1, RFC 1808).
    The base is treated as a directory, the same way ``.well-known/smart-configuration`` is
    appended to it, so ``authorize`` under ``https://h/fhir`` is ``https://h/fhir/authorize``
    and ``/auth/token`` is ``https://h/auth/token``."""
    return urljoin(strip(base_url) + "/", url)


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not JSON or not an object. Decoding
    never raises: callers turn None into their own typed error."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None
