"""EHR launch, the app's side (spec §6.1).

The EHR opens the app's launch URL with ``iss`` (its FHIR base) and ``launch`` (an opaque
id). The app: (1) reads both (``parse_launch``); (2) checks ``iss`` against its allow-list
before contacting it (``check_issuer``; the spec recommends it, and without it any page could
make the app send the user to an AS of the attacker's choosing); (3) discovers ``iss`` and
authorizes with ``launch``, the ``launch`` scope and ``aud=iss``
(``ehr_authorization_request``). Extra servers of the realm ride along as further RFC 8707
``resource`` values (the multi-server request; ``aud`` stays the launching server).

Allow-list entries and ``iss`` are compared normalised (scheme/host case, trailing slash),
nothing looser: no prefix or host-only match."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from smartrealm.client._http import is_absolute_http, normalize_url
from smartrealm.client.auth import AuthorizationRequest
from smartrealm.client.discovery import SmartConfiguration
from smartrealm.client.errors import ClientUsageError, LaunchRequestError, UntrustedIssuer


@dataclass(frozen=True)
class LaunchRequest:
    iss: str
    launch: str


def parse_launch(launch_url: str) -> LaunchRequest:
    """``iss`` and ``launch`` from the URL the EHR opened (or just its query string).
    Each must appear exactly once and be non-empty; ``iss`` must be an absolute http(s)
    URL (spec §6.1)."""
    query = urlsplit(launch_url).query if "?" in launch_url else launch_url.lstrip("?")
    params = parse_qs(query, keep_blank_values=True)
    values: dict[str, str] = {}
    for name in ("iss", "launch"):
        found = params.get(name, [])
        if len(found) != 1 or not found[0].strip():
            raise LaunchRequestError(f"launch request needs exactly one non-empty {name}")
        values[name] = found[0]
    if not _safe_absolute(values["iss"]):
        raise LaunchRequestError("launch iss is not an absolute http(s) URL")
    return LaunchRequest(iss=values["iss"], launch=values["launch"])


def check_issuer(iss: str, allowed: Iterable[str]) -> str:
    """Return the allow-list entry ``iss`` matches (normalised equality) or raise
    ``UntrustedIssuer``. The entry, not ``iss``, is what the app then uses."""
    wanted = normalize_url(iss) if _safe_absolute(iss) else None
    for entry in allowed:
        if wanted is not None and _safe_absolute(entry) and normalize_url(entry) == wanted:
            return entry
    raise UntrustedIssuer(iss)


def _safe_absolute(url: str) -> bool:
    """``is_absolute_http`` that answers False where ``urlsplit`` raises (``http://[``)."""
    try:
        return is_absolute_http(url) and bool(normalize_url(url))
    except ValueError:
        return False


def ehr_authorization_request(
    launch: LaunchRequest,
    config: SmartConfiguration,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    extra_resources: Sequence[str] = (),
) -> AuthorizationRequest:
    """The authorize request of an EHR launch: ``launch`` echoed, ``aud`` = ``iss``, and
    the ``launch`` scope added when missing (spec §3.2). ``config`` must be the discovery
    of ``iss``."""
    if normalize_url(config.base_url) != normalize_url(launch.iss):
        raise ClientUsageError("config is not the discovery of the launch iss")
    scopes = scope.split()
    if "launch" not in scopes:
        scopes.insert(0, "launch")
    extra = [url for url in extra_resources if normalize_url(url) != normalize_url(launch.iss)]
    return AuthorizationRequest.create(
        authorization_endpoint=config.authorization_endpoint,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=" ".join(scopes),
        resources=[launch.iss, *extra] if extra else (),
        aud=launch.iss,
        launch=launch.launch,
    )
