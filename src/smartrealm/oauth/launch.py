"""EHR launch (SMART §6.1): the launch context an EHR establishes before it opens an app,
and the rules an authorization request carrying ``launch`` must follow.

A launch id is opaque and unguessable (256 bits), stored only as its hash, single use and
short-lived (single use, at most 5 minutes, bound to the EHR user's session and optionally
to a client_id: what docs/behaviour.md "EHR launch" promises). The AS resolves it at
``/authorize`` into the user it belongs to,
the patient, encounter and fhirContext, ``need_patient_banner``, ``smart_style_url`` and
``intent`` (§6.1 step 4), which end up in the token response (§4.4, §6.3).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any

from smartrealm.core.defaults import LAUNCH_MAX_ID as MAX_LAUNCH_ID
from smartrealm.core.urls import normalize_url
from smartrealm.oauth.errors import InvalidRequest, InvalidScope, add_query
from smartrealm.oauth.realm_view import Realm
from smartrealm.oauth.resources import Audience
from smartrealm.oauth.scopes import ScopeSet

LAUNCH_SCOPE = "launch"
ENCOUNTER_LAUNCH = "launch/encounter"
# 32 random bytes = 256 bits, far above the 128 bits an unguessable id needs.
LAUNCH_ID_BYTES = 32


def new_launch_id() -> str:
    return secrets.token_urlsafe(LAUNCH_ID_BYTES)


@dataclass(frozen=True)
class LaunchContext:
    """One EHR launch. ``iss`` is the FHIR base of the EHR the launch happened in (the
    server the patient and encounter ids belong to); ``client_id`` binds it to one app."""

    user: str
    patient: str
    iss: str
    expires_at: int
    encounter: str | None = None
    fhir_context: tuple[dict[str, Any], ...] = ()
    need_patient_banner: bool = True
    smart_style_url: str | None = None
    intent: str | None = None
    client_id: str | None = None
    created_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "patient": self.patient, "iss": self.iss,
                "expires_at": self.expires_at, "encounter": self.encounter,
                "fhir_context": list(self.fhir_context),
                "need_patient_banner": self.need_patient_banner,
                "smart_style_url": self.smart_style_url, "intent": self.intent,
                "client_id": self.client_id, "created_at": self.created_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LaunchContext:
        return cls(user=data["user"], patient=data["patient"], iss=data["iss"],
                   expires_at=int(data["expires_at"]), encounter=data.get("encounter"),
                   fhir_context=tuple(data.get("fhir_context", ())),
                   need_patient_banner=bool(data.get("need_patient_banner", True)),
                   smart_style_url=data.get("smart_style_url"), intent=data.get("intent"),
                   client_id=data.get("client_id"), created_at=int(data.get("created_at", 0)))


def app_launch_url(app_url: str, iss: str, launch_id: str) -> str:
    """§6.1 step 1: the app's launch URL with ``iss`` and ``launch`` added (any query the
    registered URL already has is kept)."""
    return add_query(app_url, {"iss": iss, "launch": launch_id})


# ---------------------------------------------------------------- the authorization request


def check_launch_value(value: str | None) -> None:
    """Syntax only: present means non-empty and of a plausible length."""
    if value is None:
        return
    if not value or len(value) > MAX_LAUNCH_ID:
        raise InvalidRequest("unknown, expired or already used launch")


def check_launch_use(launch: LaunchContext | None, *, client_id: str, scopes: ScopeSet,
                     audience: Audience, aud_given: bool, realm: Realm) -> Audience:
    """The rules of an EHR-launch authorization request (SMART App Launch §3.2,
    §6.1). Returns the audience with the EHR (the launch's ``iss``) as primary server: the
    primary server is ``aud`` if given, else the EHR launch's ``iss``, else the first
    ``resource`` (docs/behaviour.md)."""
    if launch is None:
        # §6.1: unknown, expired and used ids are all invalid_request.
        raise InvalidRequest("unknown, expired or already used launch")
    if launch.client_id is not None and launch.client_id != client_id:
        raise InvalidRequest("this launch was created for another application")
    if LAUNCH_SCOPE not in scopes.other:
        raise InvalidScope("an EHR launch must request the launch scope (SMART §3.2)")
    ehr = realm.server_by_url(launch.iss)
    if ehr is None:
        raise InvalidRequest("unknown, expired or already used launch")
    if aud_given and audience.primary.id != ehr.id:
        # §3.2: "In EHR launch, aud == the launch's iss".
        raise InvalidRequest(f"aud must be the launch's iss {launch.iss}")
    if ehr not in audience.servers:
        raise InvalidRequest(f"the launch's iss {launch.iss} must be the aud or one of the "
                             "resources")
    others = tuple(rs for rs in audience.servers if rs.id != ehr.id)
    return replace(audience, servers=(ehr, *others))


def is_launch_iss(launch: LaunchContext, base_url: str) -> bool:
    return normalize_url(launch.iss) == normalize_url(base_url)
