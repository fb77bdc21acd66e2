"""Records and storage ports of the AS's user interaction: users and the server-side state of
one authorization interaction (login → patient picker → consent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from smartrealm.authz.consent_store import AppAccessStore, ConsentStore
from smartrealm.authz.initial_tokens import InitialTokenStore
from smartrealm.authz.launch_store import EhrStores
from smartrealm.authz.lockout import LoginFailureStore
from smartrealm.authz.patient_index import PatientIndex
from smartrealm.oauth.assertions import ReplayCache
from smartrealm.oauth.launch import LaunchContext
from smartrealm.oauth.store import ClientStore, CodeStore, RefreshStore
from smartrealm.oauth.token_registry import TokenRegistry
from smartrealm.storage.rs_credentials import RsCredentialStore

STAGES = ("login", "patient", "encounter", "consent")


@dataclass(frozen=True)
class User:
    username: str
    password_hash: str
    display_name: str
    fhir_user_server: str
    fhir_user: str  # relative reference on fhir_user_server, e.g. Patient/p0012

    @property
    def is_patient(self) -> bool:
        return self.fhir_user.startswith("Patient/")


@dataclass(frozen=True)
class PendingRequest:
    """The validated authorization request (oauth.endpoints.authorize), as kept with its
    interaction until the code is issued."""

    client_id: str
    redirect_uri: str
    state: str
    scope: str
    code_challenge: str
    servers: tuple[str, ...]  # the audience, by server id
    multi: bool  # several servers asked for (RFC 8707 resources)
    nonce: str | None = None
    launch: LaunchContext | None = None  # an EHR launch (§6.1), already claimed

    def to_dict(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "redirect_uri": self.redirect_uri,
                "state": self.state, "scope": self.scope,
                "code_challenge": self.code_challenge, "servers": list(self.servers),
                "multi": self.multi, "nonce": self.nonce,
                "launch": self.launch.to_dict() if self.launch else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingRequest:
        launch = data.get("launch")
        return cls(client_id=data["client_id"], redirect_uri=data["redirect_uri"],
                   state=data["state"], scope=data["scope"],
                   code_challenge=data["code_challenge"], servers=tuple(data["servers"]),
                   multi=bool(data["multi"]), nonce=data.get("nonce"),
                   launch=LaunchContext.from_dict(launch) if isinstance(launch, dict) else None)


@dataclass(frozen=True)
class Offer:
    """What the consent page offers for one server: the scopes the AS would grant there
    (``granted``, cut to the user's approval once decided), those it cannot (``refused``),
    the patient and encounter there, and the granular alternatives a user may pick instead
    of a whole scope (oauth.approval)."""

    server_id: str
    name: str
    base_url: str
    granted: tuple[str, ...]
    refused: tuple[str, ...] = ()
    patient: str | None = None
    patient_wanted: bool = False
    encounter: str | None = None
    alternatives: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"server_id": self.server_id, "name": self.name, "base_url": self.base_url,
                "granted": list(self.granted), "refused": list(self.refused),
                "patient": self.patient, "patient_wanted": self.patient_wanted,
                "encounter": self.encounter,
                "alternatives": {k: list(v) for k, v in self.alternatives.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Offer:
        return cls(server_id=data["server_id"], name=data["name"], base_url=data["base_url"],
                   granted=tuple(data["granted"]), refused=tuple(data.get("refused", ())),
                   patient=data.get("patient"),
                   patient_wanted=bool(data.get("patient_wanted", False)),
                   encounter=data.get("encounter"),
                   alternatives={k: tuple(v) for k, v in data.get("alternatives", {}).items()})


@dataclass(frozen=True)
class Interaction:
    """One authorization in progress, keyed by the hash of an httpOnly cookie value (the
    /manage page keeps its signed-in session in the same store, with no ``request``).

    ``request`` is the validated authorization request; ``patients`` maps server id to the
    patient's id there (None: not found); ``encounter`` is the Encounter chosen on the
    user's home server; ``offers`` is what the consent page showed."""

    csrf: str
    expires_at: int
    request: PendingRequest | None
    stage: str = "login"
    username: str | None = None
    auth_time: int = 0
    patients: dict[str, str | None] = field(default_factory=dict)
    offers: tuple[Offer, ...] = ()
    identity: tuple[str, ...] = ()
    encounter: str | None = None

    @property
    def pending(self) -> PendingRequest:
        """The authorization request; only a /manage session has none."""
        if self.request is None:
            raise ValueError("this session is not an authorization in progress")
        return self.request

    def to_dict(self) -> dict[str, Any]:
        return {"csrf": self.csrf, "expires_at": self.expires_at,
                "request": self.request.to_dict() if self.request else None,
                "stage": self.stage, "username": self.username, "auth_time": self.auth_time,
                "patients": self.patients, "offers": [o.to_dict() for o in self.offers],
                "identity": list(self.identity), "encounter": self.encounter}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Interaction:
        # "failures" was written by earlier versions (per-interaction counting, replaced by
        # the per-user-name lockout); an interaction stored then still loads. A /manage
        # session was stored with an empty request.
        request = data.get("request")
        return cls(csrf=data["csrf"], expires_at=int(data["expires_at"]),
                   request=PendingRequest.from_dict(request) if request else None,
                   stage=data.get("stage", "login"), username=data.get("username"),
                   auth_time=int(data.get("auth_time", 0)),
                   patients=dict(data.get("patients", {})),
                   offers=tuple(Offer.from_dict(o) for o in data.get("offers", ())),
                   identity=tuple(data.get("identity", ())), encounter=data.get("encounter"))


class UserStore(Protocol):
    def get(self, username: str) -> User | None: ...

    def put(self, user: User) -> None: ...


class InteractionStore(Protocol):
    def create(self, key_hash: str, interaction: Interaction) -> None: ...

    def get(self, key_hash: str, now: int) -> Interaction | None:
        """None when unknown or expired."""
        ...

    def update(self, key_hash: str, interaction: Interaction) -> None: ...

    def delete(self, key_hash: str) -> None: ...


@dataclass(frozen=True)
class Stores:
    clients: ClientStore
    users: UserStore
    codes: CodeStore
    interactions: InteractionStore
    refresh_tokens: RefreshStore
    ehr: EhrStores  # EHR launch: launches, apps' launch URLs, EHR simulator sessions
    replays: ReplayCache  # private_key_jwt jti values seen (SMART §4.5)
    tokens: TokenRegistry  # issued access tokens: revocation, introspection (RFC 7662)
    rs_credentials: RsCredentialStore  # each resource server's client secret
    login_failures: LoginFailureStore  # sign-in lockout (authz/lockout.py)
    client_auth_failures: LoginFailureStore  # failed client secrets (authz/client_guard.py)
    consents: ConsentStore  # remembered consents (authz/consent_store.py)
    app_access: AppAccessStore  # apps holding a user's refresh tokens (management page)
    initial_tokens: InitialTokenStore  # RFC 7591 §3 initial access tokens (/register)
    patient_index: PatientIndex  # one person's records across servers (patient_index.py)
