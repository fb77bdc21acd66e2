"""What a verified access token allows at THIS resource server.

A realm token is multi-audience: its top-level ``scope`` is the union over all servers, and
each server's own share travels in ``authorization_details`` (SMART 2.2 §10.1, docs/behaviour.md).
A server enforces only its own entry, the one whose ``locations`` contain its base URL.

Fail closed: the realm's AS puts one entry per audience member in every token it mints (user
grants, Backend Services, its own self-tokens), so a token that carries
``authorization_details`` without an entry for this server, or that names other servers in
``aud`` without any entry, is refused: its top-level ``scope`` is a union that says nothing
about what this server may allow. Only a token with no ``authorization_details`` whose ``aud``
is this server alone is judged by its top-level ``scope``/``patient``, which are then this
server's own (RFC 9068 §2.2.3)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smartrealm.core.urls import normalize_url
from smartrealm.oauth.scopes import ScopeSet, ScopeSyntaxError, parse_scopes

from .errors import TokenRejected


@dataclass(frozen=True)
class AccessContext:
    subject: str
    client_id: str
    scopes: ScopeSet           # the scopes granted at this server
    patient: str | None        # the in-context patient's id ON THIS SERVER
    fhir_user: str | None      # absolute URL of the user's FHIR resource, if any
    claims: Mapping[str, Any]  # every verified claim, for the curious (never logged)
    expires_at: int            # the token's exp, seconds since the epoch


def access_context(claims: Mapping[str, Any], own_base: str) -> AccessContext:
    """Build the context from claims that have already been verified."""
    entry = own_authorization_details(claims, own_base)
    source = entry if entry is not None else _single_server_claims(claims, own_base)
    scope = source.get("scope", "")
    if not isinstance(scope, str):
        raise TokenRejected("scope must be a string")
    try:
        scopes = parse_scopes(scope)
    except ScopeSyntaxError as exc:
        raise TokenRejected(f"malformed scope: {exc}") from None
    return AccessContext(
        subject=_str_claim(claims, "sub"),
        client_id=_str_claim(claims, "client_id"),
        scopes=scopes,
        patient=_patient(claims, entry, own_base),
        fhir_user=_optional_str(claims, "fhirUser"),
        claims=dict(claims),
        expires_at=int(claims["exp"]),
    )


def own_authorization_details(claims: Mapping[str, Any],
                              own_base: str) -> Mapping[str, Any] | None:
    """The ``smart_on_fhir`` entry whose ``locations`` contain this server (normalized)."""
    details = claims.get("authorization_details")
    if details is None:
        return None
    if not isinstance(details, list):
        raise TokenRejected("authorization_details must be an array")
    wanted = normalize_url(own_base)
    for entry in details:
        if not isinstance(entry, dict) or entry.get("type") != "smart_on_fhir":
            continue
        locations = entry.get("locations")
        if isinstance(locations, list) and any(
                isinstance(loc, str) and normalize_url(loc) == wanted for loc in locations):
            return entry
    return None


def _single_server_claims(claims: Mapping[str, Any], own_base: str) -> Mapping[str, Any]:
    """The top-level claims, when they can only be this server's share: no
    ``authorization_details`` at all and ``aud`` naming this server alone. Anything else
    without an entry for us is refused (401 ``invalid_token``, RFC 6750 §3.1: the token is
    invalid here, and no scope the client could ask for would fix it)."""
    if "authorization_details" in claims:
        raise TokenRejected("the token's authorization_details grant nothing at this server")
    aud = claims.get("aud")
    listed = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    members = {normalize_url(a) for a in listed if isinstance(a, str)}
    if members != {normalize_url(own_base)}:
        raise TokenRejected("the token names several servers but has no "
                            "authorization_details entry for this one")
    return claims


def _patient(claims: Mapping[str, Any], entry: Mapping[str, Any] | None,
             own_base: str) -> str | None:
    """This server's patient id. With an authorization_details entry for us, only that
    entry's ``patient`` counts (the AS writes each server's id there; a top-level value is
    never a substitute). Otherwise (a single-server token) a ``launch-full-url`` fhirContext
    reference on our base (seed proposal, spec §6.5), then the top-level ``patient``."""
    if entry is not None:
        return _optional_str(entry, "patient")
    from_context = _patient_from_fhir_context(claims.get("fhirContext"), own_base)
    if from_context is not None:
        return from_context
    return _optional_str(claims, "patient")


def _patient_from_fhir_context(items: Any, own_base: str) -> str | None:
    if not isinstance(items, list):
        return None
    prefix = normalize_url(own_base) + "/Patient/"
    for item in items:
        if not isinstance(item, dict) or item.get("role") != "launch-full-url":
            continue
        reference = item.get("reference")
        if not isinstance(reference, str):
            continue
        normalized = normalize_url(reference)
        if normalized.startswith(prefix):
            patient_id = normalized[len(prefix):]
            if patient_id and "/" not in patient_id:
                return patient_id
    return None


def _str_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise TokenRejected(f"the {name} claim is missing")
    return value


def _optional_str(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None
