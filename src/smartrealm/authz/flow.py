"""The steps of one authorization behind the pages: who the patient is on each server, which
page comes next, what each server would be granted (the consent page's offer), and the code
issued on approval."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from smartrealm.authz.launch import launch_of, with_launch
from smartrealm.authz.lockout import CLIENT_AUTH_POLICY, LoginPolicy
from smartrealm.authz.login_guard import LoginGuard
from smartrealm.authz.multi_aud import MultiAudienceCheck
from smartrealm.authz.patients import PatientDirectory, resolve_patient
from smartrealm.authz.records import Interaction, Offer, PendingRequest, Stores, User
from smartrealm.core.defaults import CODE_LIFETIME
from smartrealm.oauth.approval import granular_alternatives
from smartrealm.oauth.client_secrets import ClientSecrets
from smartrealm.oauth.endpoints.authorize import AuthorizeRequest
from smartrealm.oauth.errors import add_query
from smartrealm.oauth.grants import Grant, ServerGrant
from smartrealm.oauth.keys import KeyRing
from smartrealm.oauth.launch import is_launch_iss
from smartrealm.oauth.negotiate import (
    client_ceiling,
    identity_scopes,
    needs_patient,
    negotiate_server,
    wants_encounter,
)
from smartrealm.oauth.passwords import token_hash
from smartrealm.oauth.scopes import ScopeSet, parse_scopes
from smartrealm.oauth.store import AuthorizationCode
from smartrealm.oauth.tokens import TokenMinter
from smartrealm.realm.config import RealmConfig, ResourceServerConfig

PICKER_STAGES = ("patient", "encounter")


@dataclass(frozen=True)
class AuthzContext:
    """Everything the AS's views need; built once by ``create_app``."""

    realm: RealmConfig
    stores: Stores
    keys: KeyRing
    minter: TokenMinter
    patients: PatientDirectory
    client_secrets: ClientSecrets  # the realm's keyed hash of client secrets
    clock: Callable[[], float] = time.time
    login_policy: LoginPolicy = field(default_factory=LoginPolicy)
    # Failed client secrets, per client_id and caller address (authz/client_guard.py).
    client_auth_policy: LoginPolicy = field(default_factory=lambda: CLIENT_AUTH_POLICY)
    multi_aud: MultiAudienceCheck | None = None  # None: no capability check (unit tests)

    def now(self) -> int:
        return int(self.clock())

    @property
    def issuer(self) -> str:
        return self.realm.auth_server.issuer

    @property
    def login_guard(self) -> LoginGuard:
        return LoginGuard(self.stores.login_failures, self.login_policy, self.now)


def pending_request(req: AuthorizeRequest) -> PendingRequest:
    """The validated request as kept with the interaction."""
    return PendingRequest(
        client_id=req.client.client_id, redirect_uri=req.redirect_uri, state=req.state,
        scope=str(req.scopes), code_challenge=req.code_challenge,
        servers=tuple(rs.id for rs in req.audience.servers), multi=req.audience.multi,
        nonce=req.nonce, launch=req.launch)


def audience(ctx: AuthzContext, interaction: Interaction) -> list[ResourceServerConfig]:
    return [ctx.realm.server(sid) for sid in interaction.pending.servers]


def requested_scopes(interaction: Interaction) -> ScopeSet:
    return parse_scopes(interaction.pending.scope)


def needs_picker(interaction: Interaction, user: User) -> bool:
    """A practitioner asked for a patient chooses one (§6.2); a patient user is their own
    patient; other users (RelatedPerson, Person) get no patient context here."""
    return needs_patient(requested_scopes(interaction)) and user.fhir_user.startswith(
        "Practitioner/")


def encounter_server(ctx: AuthzContext, interaction: Interaction,
                     user: User) -> ResourceServerConfig | None:
    """Where the encounter picker looks (§6.2 ``launch/encounter``): the user's home server
    (the EHR), when it is in the audience and the patient exists there."""
    home = ctx.realm.server(user.fhir_user_server)
    if not wants_encounter(requested_scopes(interaction)) or launch_of(interaction):
        return None
    in_audience = home.id in interaction.pending.servers
    return home if in_audience and interaction.patients.get(home.id) else None


def next_stage(ctx: AuthzContext, interaction: Interaction, user: User, after: str) -> str:
    """The page after ``after`` ("login", "patient" or "encounter")."""
    later = PICKER_STAGES[PICKER_STAGES.index(after) + 1:] if after in PICKER_STAGES \
        else PICKER_STAGES
    if "patient" in later and needs_picker(interaction, user):
        return "patient"
    if "encounter" in later and encounter_server(ctx, interaction, user) is not None:
        return "encounter"
    return "consent"


async def find_patient(ctx: AuthzContext, interaction: Interaction, user: User,
                       patient_id: str) -> dict[str, str | None] | None:
    """None when the patient does not exist on the user's home server."""
    home = ctx.realm.server(user.fhir_user_server)
    return await resolve_patient(ctx.patients, ctx.stores.patient_index, home, patient_id,
                                 audience(ctx, interaction))


async def own_patient(ctx: AuthzContext, interaction: Interaction,
                      user: User) -> dict[str, str | None]:
    if not (user.is_patient and needs_patient(requested_scopes(interaction))):
        return {}
    found = await find_patient(ctx, interaction, user, user.fhir_user.split("/", 1)[1])
    # A patient user whose record cannot be read gets no patient context anywhere.
    return found if found is not None else {}


def _launch_context(interaction: Interaction, user: User,
                    rs: ResourceServerConfig) -> tuple[str | None, bool]:
    """(encounter id, EHR launch?) on ``rs``: an EHR launch's own server gets the launch's
    encounter and the ``launch`` scope; otherwise the picked encounter on the home server."""
    launch = launch_of(interaction)
    if launch is not None:
        on_ehr = is_launch_iss(launch, rs.base_url)
        return (launch.encounter if on_ehr else None), on_ehr
    return (interaction.encounter if rs.id == user.fhir_user_server else None), False


def make_offers(ctx: AuthzContext, interaction: Interaction,
                user: User) -> tuple[tuple[Offer, ...], tuple[str, ...]]:
    """Per-server grants for the consent page, with the granular alternatives a user may
    choose instead of whole Observation/Condition scopes, and the identity scopes."""
    requested = requested_scopes(interaction)
    client = ctx.stores.clients.get(interaction.pending.client_id)
    ceiling = client_ceiling(client.scope) if client is not None else None
    offers = []
    for rs in audience(ctx, interaction):
        encounter, ehr_launch = _launch_context(interaction, user, rs)
        offer = negotiate_server(requested, rs, ceiling, interaction.patients.get(rs.id),
                                 user.is_patient, encounter=encounter, ehr_launch=ehr_launch)
        offers.append(Offer(
            server_id=rs.id, name=rs.name, base_url=rs.base_url,
            granted=tuple(offer.granted), refused=tuple(offer.refused),
            patient=offer.patient, patient_wanted=needs_patient(requested),
            encounter=offer.encounter,
            alternatives={s: tuple(granular_alternatives(s))
                          for s in offer.granted if granular_alternatives(s)}))
    return tuple(offers), tuple(identity_scopes(requested, has_fhir_user=True))


def build_grant(ctx: AuthzContext, interaction: Interaction, user: User) -> Grant:
    """The grant of the offers as approved (``granted`` holds the user's approval)."""
    servers = tuple(
        ServerGrant(server_id=o.server_id, base_url=o.base_url,
                    fhir_version=ctx.realm.server(o.server_id).fhir_version,
                    scopes=o.granted, patient=o.patient, encounter=o.encounter)
        for o in interaction.offers
    )
    home = ctx.realm.server(user.fhir_user_server)
    grant = Grant(client_id=interaction.pending.client_id, subject=user.username,
                  servers=servers, identity_scopes=tuple(interaction.identity),
                  fhir_user=f"{home.base_url}/{user.fhir_user}",
                  nonce=interaction.pending.nonce, auth_time=interaction.auth_time)
    return with_launch(grant, interaction)  # EHR launch context (§6.1), if any


def issue_code(ctx: AuthzContext, interaction: Interaction, grant: Grant) -> str:
    """A 256-bit single-use code, stored only as its hash, bound to the client, the
    redirect URI, the PKCE challenge and the grant; returns the client redirect URL."""
    code = secrets.token_urlsafe(32)
    req = interaction.pending
    ctx.stores.codes.save(token_hash(code), AuthorizationCode(
        client_id=req.client_id, redirect_uri=req.redirect_uri,
        code_challenge=req.code_challenge, grant=grant,
        expires_at=ctx.now() + CODE_LIFETIME))
    # RFC 9207: iss tells the client which AS answered (mix-up defence).
    return add_query(req.redirect_uri, {"code": code, "state": req.state, "iss": ctx.issuer})
