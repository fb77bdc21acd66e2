"""The token response (spec §4.4) and the per-server view of a multi-audience grant.

One token, several servers: what applies at a given FHIR base is, in order,
1. the ``authorization_details`` entry whose ``locations`` contain that base (SMART 2.2
   §10.1: its ``scope``/``patient``; an absent field falls back to the top level);
2. for the patient, a ``fhirContext`` item with role ``launch-full-url`` whose absolute
   reference lies under that base (the multi-server context rule, spec §6.5/§10.2.3);
3. the top-level ``scope`` / ``patient``.
Bases are compared normalised (scheme and host case, trailing slash)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from smartrealm.client._http import normalize_url
from smartrealm.client.errors import TokenError

LAUNCH_FULL_URL = "launch-full-url"
SMART_DETAILS_TYPE = "smart_on_fhir"


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    token_type: str
    expires_in: int | None
    scope: str
    refresh_token: str | None
    id_token: str | None
    patient: str | None
    fhir_context: tuple[dict[str, Any], ...]
    authorization_details: tuple[dict[str, Any], ...]
    raw: dict[str, Any]
    # Absolute expiry (epoch seconds), fixed when the response arrives: ``expires_in`` alone
    # is meaningless once the token has been stored and loaded again.
    expires_at: float | None = None

    @classmethod
    def from_response(cls, body: dict[str, Any], *, now: float | None = None) -> TokenSet:
        """Validate a successful token response; a malformed one is a ``TokenError``."""
        token_type = _text(body, "token_type", required=True)
        # Spec §4.4: token_type is Bearer, case-insensitively. Anything else (DPoP, MAC)
        # would be sent wrongly by FhirSession, so refuse it here.
        if token_type.lower() != "bearer":
            raise TokenError(f"token_type {token_type!r} is not Bearer")
        return cls(
            access_token=_text(body, "access_token", required=True),
            token_type=token_type,
            expires_in=_expires_in(body),
            scope=_text(body, "scope"),
            refresh_token=_text(body, "refresh_token") or None,
            id_token=_text(body, "id_token") or None,
            patient=_text(body, "patient") or None,
            fhir_context=_objects(body, "fhirContext"),
            authorization_details=_objects(body, "authorization_details"),
            raw=body,
            expires_at=_expires_at(body, now),
        )

    def expired(self, *, now: float | None = None, leeway: float = 30.0) -> bool:
        """True when the token expires within ``leeway`` seconds (unknown expiry: never)."""
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) + leeway >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for token storage: the response fields (refresh token and
        launch context included, even when a refresh response left them out) plus the
        absolute ``expires_at``. Holds secrets: store it like a password."""
        data: dict[str, Any] = {
            "access_token": self.access_token, "token_type": self.token_type,
            "scope": self.scope, "expires_in": self.expires_in,
            "refresh_token": self.refresh_token, "id_token": self.id_token,
            "patient": self.patient, "fhirContext": list(self.fhir_context),
            "authorization_details": list(self.authorization_details),
        }
        extra = {k: v for k, v in self.raw.items() if k not in data}
        body = {**extra, **{k: v for k, v in data.items() if v not in (None, "", [])}}
        return {"response": body, "expires_at": self.expires_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenSet:
        """The inverse of ``to_dict``, validated like a token response (``TokenError``)."""
        body, expires_at = data.get("response"), data.get("expires_at")
        if not isinstance(body, dict):
            raise TokenError("stored token has no response object")
        if expires_at is not None and (
            isinstance(expires_at, bool) or not isinstance(expires_at, int | float)
        ):
            raise TokenError("stored token expires_at is not a number")
        return replace(cls.from_response(body), expires_at=expires_at)

    def details_for(self, base_url: str) -> dict[str, Any] | None:
        """The ``smart_on_fhir`` authorization_details entry covering ``base_url``."""
        wanted = normalize_url(base_url)
        for entry in self.authorization_details:
            if entry.get("type", SMART_DETAILS_TYPE) != SMART_DETAILS_TYPE:
                continue
            locations = entry.get("locations")
            if isinstance(locations, list) and any(
                isinstance(loc, str) and normalize_url(loc) == wanted for loc in locations
            ):
                return entry
        return None

    def patient_id_for(self, base_url: str) -> str | None:
        """The launch patient's id on the server at ``base_url`` (module docstring order)."""
        entry = self.details_for(base_url)
        if entry is not None and isinstance(entry.get("patient"), str):
            return str(entry["patient"])
        from_context = self._full_url_patient(base_url)
        return from_context if from_context is not None else self.patient

    def scopes_for(self, base_url: str) -> tuple[str, ...]:
        """The scopes granted at ``base_url``: its entry's ``scope``, else the top level."""
        entry = self.details_for(base_url)
        if entry is not None and isinstance(entry.get("scope"), str):
            return tuple(str(entry["scope"]).split())
        return tuple(self.scope.split())

    def _full_url_patient(self, base_url: str) -> str | None:
        prefix = normalize_url(base_url) + "/Patient/"
        for item in self.fhir_context:
            reference = item.get("reference")
            if item.get("role") != LAUNCH_FULL_URL or not isinstance(reference, str):
                continue
            normalized = normalize_url(reference)
            if normalized.startswith(prefix):
                # ``Patient/<id>`` or ``Patient/<id>/_history/<v>``: the id is one segment.
                patient_id = normalized[len(prefix) :].split("/")[0]
                if patient_id:
                    return patient_id
        return None


def _text(body: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise TokenError(f"token response {key} is missing or not a string")
    return value


def _expires_in(body: dict[str, Any]) -> int | None:
    value = body.get("expires_in")
    if value is None:
        return None
    # bool is an int subclass; reject it along with strings and negatives.
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise TokenError("token response expires_in is not a non-negative number")
    return int(value)


def _expires_at(body: dict[str, Any], now: float | None) -> float | None:
    lifetime = _expires_in(body)
    if lifetime is None:
        return None
    return (time.time() if now is None else now) + lifetime


def _objects(body: dict[str, Any], key: str) -> tuple[dict[str, Any], ...]:
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise TokenError(f"token response {key} is not an array of objects")
    return tuple(value)
