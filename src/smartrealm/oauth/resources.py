"""RFC 8707 resource indicators and the realm's multi-audience policy (docs/behaviour.md,
"Asking for one or several servers"; SMART App Launch 2.2 ``aud``, RFC 8707 §2).

* one ``aud``, no ``resource``      → an ordinary single-audience SMART launch;
* ``resource``s, no ``aud``         → multi-server mode (one ``resource`` = ``aud``);
* ``aud`` and ``resource``s         → only if ``aud`` is one of them; it becomes the primary;
* several ``aud``                   → invalid_request;
* a ``resource`` that is not absolute, has a fragment, or names a server the AS does not
  govern (or the client may not use) → invalid_target.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from smartrealm.oauth.errors import InvalidRequest, InvalidTarget
from smartrealm.oauth.realm_view import Realm, Server

# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*:[^\s]+$")


@dataclass(frozen=True)
class Audience:
    """The servers a grant is for, primary first. ``multi`` records that the request used
    the ``resource`` form (then the response carries full-URL context, docs/behaviour.md)."""

    servers: tuple[Server, ...]
    multi: bool

    @property
    def primary(self) -> Server:
        return self.servers[0]

    @property
    def base_urls(self) -> list[str]:
        return [rs.base_url for rs in self.servers]


def is_absolute_uri(value: str) -> bool:
    return _ABSOLUTE.fullmatch(value) is not None


def resolve_resource(realm: Realm, value: str) -> Server:
    """Map one ``resource`` value to a governed server, or raise ``invalid_target``."""
    if not is_absolute_uri(value):
        raise InvalidTarget(f"resource {value!r} is not an absolute URI (RFC 8707 §2)")
    if "#" in value:
        raise InvalidTarget(f"resource {value!r} must not contain a fragment (RFC 8707 §2)")
    server = realm.server_by_url(value)
    if server is None:
        raise InvalidTarget(f"resource {value!r} is not a server of this realm")
    return server


def _resolve_aud(realm: Realm, value: str) -> Server:
    # SMART §3.3: an unknown aud means no code; the reference launcher says invalid_request.
    server = realm.server_by_url(value) if is_absolute_uri(value) and "#" not in value else None
    if server is None:
        raise InvalidRequest(f"aud {value!r} is not a FHIR server of this realm")
    return server


def _unique(servers: Sequence[Server]) -> tuple[Server, ...]:
    seen: dict[str, Server] = {}
    for rs in servers:
        seen.setdefault(rs.id, rs)
    return tuple(seen.values())


def parse_audience(realm: Realm, aud: Sequence[str], resources: Sequence[str],
                   allowed_servers: Sequence[str] = ()) -> Audience:
    """Apply the realm's policy (the table above) to a request's ``aud`` and ``resource``."""
    if len(aud) > 1:
        raise InvalidRequest("aud must not be repeated; use several resource parameters")
    if not aud and not resources:
        raise InvalidRequest("aud (or resource) is required (SMART §3.2)")
    targets = _unique([resolve_resource(realm, r) for r in resources])
    if aud:
        primary = _resolve_aud(realm, aud[0])
        if targets and primary not in targets:
            raise InvalidRequest("aud must be one of the resource values when both are sent")
        targets = (primary, *(rs for rs in targets if rs != primary)) if targets else (primary,)
    _check_allowed(targets, allowed_servers)
    return Audience(servers=targets, multi=bool(resources))


def _check_allowed(servers: Sequence[Server], allowed: Sequence[str]) -> None:
    # RFC 8707 §2: a server the client may not access is an invalid target.
    if not allowed:
        return
    for rs in servers:
        if rs.id not in allowed:
            raise InvalidTarget(f"this client may not access {rs.base_url}")


def narrow(realm: Realm, granted: Sequence[str], resources: Sequence[str]) -> list[str]:
    """Token-endpoint ``resource`` (RFC 8707 §2.2): a subset of the granted base URLs, in
    grant order; asking for anything not granted is ``invalid_target``. No ``resource``
    keeps the whole grant."""
    if not resources:
        return list(granted)
    wanted = {resolve_resource(realm, r).base_url for r in resources}
    if not wanted <= set(granted):
        raise InvalidTarget("resource was not granted by this authorization code")
    return [url for url in granted if url in wanted]
