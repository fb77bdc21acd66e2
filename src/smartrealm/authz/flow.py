"""The steps of one authorization behind the pages: who the patient is on each server, what
each server would be granted (the consent page's offer), and the code issued on approval."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smartrealm.authz.patients import PatientDirectory, resolve_patient
from smartrealm.authz.records import Interaction, Stores, User
from smartrealm.oauth.endpoints.authorize import AuthorizeRequest
from smartrealm.oauth.errors import add_query
from smartrealm.oauth.grants import Grant, ServerGrant
from smartrealm.oauth.keys import KeyRing
from smartrealm.oauth.negotiate import identity_scopes, needs_patient, negotiate_server
from smartrealm.oauth.passwords import token_hash
from smartrealm.oauth.scopes import ScopeSet, parse_scopes
from smartrealm.oauth.store import AuthorizationCode
from smartrealm.oauth.tokens import TokenMinter
from smartrealm.realm.config import RealmConfig, ResourceServerConfig

CODE_LIFETIME = 60  # SMART §3.5: "usually about one minute"


@dataclass(frozen=True)
class AuthzContext:
    """Everything the AS's views need; built once by ``create_app``."""

    realm: RealmConfig
    stores: Stores
    keys: KeyRing
    minter: TokenMinter
    patients: PatientDirectory
    clock: Callable[[], float] = time.time

    def now(self) -> int:
        return int(self.clock())

    @property
    def issuer(self) -> str:
        return self.realm.auth_server.issuer


def request_data(req: AuthorizeRequest) -> dict[str, Any]:
    """The validated request as stored with the interaction."""
    return {"client_id": req.client.client_id, "redirect_uri": req.redirect_uri,
            "state": req.state, "scope": str(req.scopes), "code_challenge": req.code_challenge,
            "servers": [rs.id for rs in req.audience.servers], "multi": req.audience.multi,
            "nonce": req.nonce}


def audience(ctx: AuthzContext, interaction: Interaction) -> list[ResourceServerConfig]:
    return [ctx.realm.server(sid) for sid in interaction.request["servers"]]


def requested_scopes(interaction: Interaction) -> ScopeSet:
    return parse_scopes(interaction.request["scope"])


def needs_picker(interaction: Interaction, user: User) -> bool:
    """A practitioner asked for a patient chooses one (§6.2); a patient user is their own
    patient; other users (RelatedPerson, Person) get no patient context here."""
    return needs_patient(requested_scopes(interaction)) and user.fhir_user.startswith(
        "Practitioner/")


async def find_patient(ctx: AuthzContext, interaction: Interaction, user: User,
                       patient_id: str) -> dict[str, str | None] | None:
    """None when the patient does not exist on the user's home server."""
    home = ctx.realm.server(user.fhir_user_server)
    return await resolve_patient(ctx.patients, home, patient_id, audience(ctx, interaction))


async def own_patient(ctx: AuthzContext, interaction: Interaction,
                      user: User) -> dict[str, str | None]:
    if not (user.is_patient and needs_patient(requested_scopes(interaction))):
        return {}
    found = await find_patient(ctx, interaction, user, user.fhir_user.split("/", 1)[1])
    # A patient user whose record cannot be read gets no patient context anywhere.
    return found if found is not None else {}


def make_offers(ctx: AuthzContext, interaction: Interaction,
                user: User) -> tuple[list[dict[str, Any]], list[str]]:
    """Per-server grants for the consent page, and the identity scopes (design.md)."""
    requested = requested_scopes(interaction)
    client = ctx.stores.clients.get(interaction.request["client_id"])
    ceiling = parse_scopes(client.scope) if client is not None and client.scope else None
    offers = []
    for rs in audience(ctx, interaction):
        offer = negotiate_server(requested, rs, ceiling, interaction.patients.get(rs.id),
                                 user.is_patient)
        offers.append({"server_id": rs.id, "name": rs.name, "base_url": rs.base_url,
                       "granted": list(offer.granted), "refused": list(offer.refused),
                       "patient": offer.patient, "patient_wanted": needs_patient(requested)})
    return offers, list(identity_scopes(requested, has_fhir_user=True))


def build_grant(ctx: AuthzContext, interaction: Interaction, user: User) -> Grant:
    servers = tuple(
        ServerGrant(server_id=o["server_id"], base_url=o["base_url"],
                    fhir_version=ctx.realm.server(o["server_id"]).fhir_version,
                    scopes=tuple(o["granted"]), patient=o["patient"])
        for o in interaction.offers
    )
    home = ctx.realm.server(user.fhir_user_server)
    return Grant(client_id=interaction.request["client_id"], subject=user.username,
                 servers=servers, identity_scopes=tuple(interaction.identity),
                 fhir_user=f"{home.base_url}/{user.fhir_user}",
                 nonce=interaction.request["nonce"], auth_time=interaction.auth_time)


def issue_code(ctx: AuthzContext, interaction: Interaction, grant: Grant) -> str:
    """A 256-bit single-use code, stored only as its hash, bound to the client, the
    redirect URI, the PKCE challenge and the grant; returns the client redirect URL."""
    code = secrets.token_urlsafe(32)
    req = interaction.request
    ctx.stores.codes.save(token_hash(code), AuthorizationCode(
        client_id=req["client_id"], redirect_uri=req["redirect_uri"],
        code_challenge=req["code_challenge"], grant=grant,
        expires_at=ctx.now() + CODE_LIFETIME))
    # RFC 9207: iss tells the client which AS answered (mix-up defence).
    return add_query(req["redirect_uri"], {"code": code, "state": req["state"],
                                           "iss": ctx.issuer})
