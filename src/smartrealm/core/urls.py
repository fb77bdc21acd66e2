"""URL forms compared for audiences and issuers."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit


def normalize_url(url: str) -> str:
    """Scheme and host lower-cased, no trailing slash: the form compared for audiences
    (docs/behaviour.md: "normalised: scheme and host case, trailing slash")."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
