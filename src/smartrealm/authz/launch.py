"""The EHR launch inside the AS (SMART §6.1): creating a launch (API, EHR simulator,
`smartrealm launch`), claiming it at ``/authorize``, binding it to the signed-in user, and
putting its context into the grant.

Binding: the AS keeps no login session, so the user signs in at every
authorization; a launch can be used only by an authorization in which the signed-in user is
the launch's user. Anyone else signing in gets ``invalid_request`` back at the app, and the
launch is used up either way (it is claimed, once, at ``/authorize``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from smartrealm.authz.patient_index import PatientIndex
from smartrealm.authz.patients import PatientDirectory, resolve_patient
from smartrealm.authz.records import Interaction, Stores, User
from smartrealm.core.defaults import LAUNCH_LIFETIME
from smartrealm.core.urls import is_loopback_url
from smartrealm.oauth.errors import InvalidClientMetadata, InvalidRequest, OAuthError
from smartrealm.oauth.grants import Grant
from smartrealm.oauth.launch import (
    LaunchContext,
    app_launch_url,
    is_launch_iss,
    new_launch_id,
)
from smartrealm.oauth.launch_input import HTTP_URL, LaunchInput
from smartrealm.oauth.passwords import token_hash
from smartrealm.oauth.smart_style import style_url
from smartrealm.realm.config import RealmConfig, ResourceServerConfig


@dataclass(frozen=True)
class CreatedLaunch:
    launch_id: str
    iss: str
    url: str  # the app's launch URL with iss and launch (§6.1 step 1)
    expires_at: int


def ehr_of(realm: RealmConfig, user: User) -> ResourceServerConfig:
    """The EHR a user launches from: their home server (where their fhirUser and the
    patient ids they pick live)."""
    return realm.server(user.fhir_user_server)


def app_url_for(stores: Stores, spec: LaunchInput) -> str:
    """The URL to open: the one given, else the client's registered launch URL."""
    if spec.client_id is not None and stores.clients.get(spec.client_id) is None:
        raise InvalidRequest("unknown client_id")
    if spec.launch_url is not None:
        return spec.launch_url
    registered = stores.ehr.app_launch_urls.get(spec.client_id) if spec.client_id else None
    if registered is None:
        raise InvalidRequest("give launch_url, or the client_id of an app that has a launch "
                             "URL")
    return registered


def create_launch(realm: RealmConfig, stores: Stores, spec: LaunchInput, user: User,
                  now: int) -> CreatedLaunch:
    """Store a new launch for ``user`` (the id only as its hash) and return the app URL."""
    if user.is_patient and user.fhir_user != f"Patient/{spec.patient}":
        # A patient (portal) launch is always about the patient's own record.
        raise InvalidRequest("a patient user can only launch with their own record")
    app_url = app_url_for(stores, spec)
    ehr = ehr_of(realm, user)
    launch_id = new_launch_id()
    launch = LaunchContext(
        user=user.username, patient=spec.patient, iss=ehr.base_url,
        expires_at=now + LAUNCH_LIFETIME, encounter=spec.encounter,
        fhir_context=spec.fhir_context, need_patient_banner=spec.need_patient_banner,
        smart_style_url=spec.smart_style_url or style_url(realm.auth_server.issuer),
        intent=spec.intent, client_id=spec.client_id, created_at=now)
    stores.ehr.launches.save(token_hash(launch_id), launch)
    return CreatedLaunch(launch_id, ehr.base_url, app_launch_url(app_url, ehr.base_url,
                                                                 launch_id), launch.expires_at)


def seed_launch_urls(realm: RealmConfig, stores: Stores) -> None:
    """Configured ``clients[].launch_url`` (the configuration wins over the store)."""
    for client in realm.clients:
        if client.launch_url:
            stores.ehr.app_launch_urls.put(client.client_id, client.launch_url)


# ---------------------------------------------------------------- during the authorization


def launch_claimer(stores: Stores, now: Callable[[], int]
                   ) -> Callable[[str], LaunchContext | None]:
    """What ``validate_authorize`` calls to resolve and use up a launch id."""
    def claim(value: str) -> LaunchContext | None:
        return stores.ehr.launches.claim(token_hash(value), now())
    return claim


def launch_of(interaction: Interaction) -> LaunchContext | None:
    return interaction.request.launch if interaction.request is not None else None


async def launch_login(realm: RealmConfig, patients: PatientDirectory, index: PatientIndex,
                       interaction: Interaction, user: User
                       ) -> Interaction | OAuthError | None:
    """After sign-in: None when this is not an EHR launch; an error when the signed-in user
    is not the launch's user or its patient cannot be found; else the interaction with the
    launch's patient resolved on every server of the audience (no patient picker, §6.1)."""
    launch = launch_of(interaction)
    if launch is None:
        return None
    if user.username != launch.user:
        return InvalidRequest("this launch belongs to another user")
    ehr = realm.server_by_url(launch.iss)
    servers = [realm.server(sid) for sid in interaction.pending.servers]
    found = None if ehr is None else await resolve_patient(
        patients, index, ehr, launch.patient, servers)
    if found is None:
        return InvalidRequest("the launch's patient was not found")
    return replace(interaction, patients=found)


def with_launch(grant: Grant, interaction: Interaction) -> Grant:
    """The launch's context in the grant: its fhirContext items on the EHR (the server their
    ids belong to); banner, style and intent. (The ``launch`` scope and the encounter come
    from the negotiation, flow.make_offers.)"""
    launch = launch_of(interaction)
    if launch is None:
        return grant
    servers = tuple(replace(s, fhir_context=launch.fhir_context)
                    if is_launch_iss(launch, s.base_url) else s for s in grant.servers)
    return replace(grant, servers=servers, need_patient_banner=launch.need_patient_banner,
                   smart_style_url=launch.smart_style_url, intent=launch.intent)


# ---------------------------------------------------------------- registration metadata


def launch_url_metadata(meta: object) -> str | None:
    """RFC 7591 / OIDC Registration ``initiate_login_uri``: where the EHR opens the app
    (§6.1). https, or plain http on loopback like redirect URIs; no fragment."""
    value = meta.get("initiate_login_uri") if isinstance(meta, dict) else None
    if value is None:
        return None
    url = value if isinstance(value, str) else ""
    secure = url.startswith("https://") or (url.startswith("http://") and is_loopback_url(url))
    if not secure or not HTTP_URL.fullmatch(url):
        raise InvalidClientMetadata("initiate_login_uri must be an https URL (http only on "
                                    "loopback) without fragment")
    return url


def with_launch_url(stores: Stores, client_id: str, launch_url: str | None,
                    response: dict[str, Any]) -> dict[str, Any]:
    """Store a registered client's launch URL and echo it in the registration response."""
    if launch_url is None:
        return response
    stores.ehr.app_launch_urls.put(client_id, launch_url)
    return {**response, "initiate_login_uri": launch_url}
