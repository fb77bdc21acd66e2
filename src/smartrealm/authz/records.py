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
class Interaction:
    """One authorization in progress, keyed by the hash of an httpOnly cookie value.

    ``request`` is the validated authorization request; ``patients`` maps server id to the
    patient's id there (None: not found); ``encounter`` is the Encounter chosen on the
    user's home server; ``offers`` is what the consent page showed."""

    csrf: str
    expires_at: int
    request: dict[str, Any]
    stage: str = "login"
    username: str | None = None
    auth_time: int = 0
    patients: dict[str, str | None] = field(default_factory=dict)
    offers: list[dict[str, Any]] = field(default_factory=list)
    identity: list[str] = field(default_factory=list)
    encounter: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"csrf": self.csrf, "expires_at": self.expires_at, "request": self.request,
                "stage": self.stage, "username": self.username, "auth_time": self.auth_time,
                "patients": self.patients, "offers": self.offers, "identity": self.identity,
                "encounter": self.encounter}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Interaction:
        # "failures" was written by earlier versions (per-interaction counting, replaced by
        # the per-user-name lockout); an interaction stored then still loads.
        return cls(**{k: v for k, v in data.items() if k != "failures"})


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
