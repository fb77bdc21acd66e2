"""What a user approved: one ``ServerGrant`` per server of the audience (its scopes and the
patient's id there) plus the identity scopes that are not server specific.

The grant is what an authorization code carries, and what access tokens, token responses and
``authorization_details`` (SMART §10.1) are rendered from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

# The seed's role for a full-URL patient reference (spec §6.5).
LAUNCH_FULL_URL = "launch-full-url"
DETAILS_TYPE = "smart_on_fhir"


@dataclass(frozen=True)
class ServerGrant:
    server_id: str
    base_url: str
    fhir_version: str
    scopes: tuple[str, ...]
    patient: str | None = None

    def detail(self) -> dict[str, Any]:
        """This server's ``authorization_details`` entry (SMART §10.1, CONTRACT)."""
        entry: dict[str, Any] = {"type": DETAILS_TYPE, "locations": [self.base_url],
                                 "fhirVersions": [self.fhir_version],
                                 "scope": " ".join(self.scopes)}
        if self.patient is not None:
            entry["patient"] = self.patient
        return entry


@dataclass(frozen=True)
class Grant:
    client_id: str
    subject: str
    servers: tuple[ServerGrant, ...]
    identity_scopes: tuple[str, ...] = ()
    fhir_user: str | None = None
    nonce: str | None = None
    auth_time: int = 0

    @property
    def base_urls(self) -> list[str]:
        return [s.base_url for s in self.servers]

    @property
    def scope(self) -> str:
        """The union over servers plus identity scopes (design.md: response ``scope``)."""
        tokens = [t for s in self.servers for t in s.scopes] + list(self.identity_scopes)
        return " ".join(dict.fromkeys(tokens))

    def has_scope(self, scope: str) -> bool:
        return scope in self.scope.split()

    def narrowed(self, base_urls: list[str]) -> Grant:
        keep = set(base_urls)
        return replace(self, servers=tuple(s for s in self.servers if s.base_url in keep))

    def with_scopes(self, keep: set[str]) -> Grant:
        """Only the scopes in ``keep`` (a refresh request's narrower ``scope``, §4.3)."""
        servers = tuple(replace(s, scopes=tuple(t for t in s.scopes if t in keep))
                        for s in self.servers)
        identity = tuple(t for t in self.identity_scopes if t in keep)
        return replace(self, servers=servers, identity_scopes=identity)

    def context(self) -> dict[str, Any]:
        """The seed's rule (§6.5, CONTRACT): top-level ``patient`` only when the patient has
        the same id on every server of the audience; otherwise one ``launch-full-url``
        fhirContext item per server where the patient exists."""
        ids = [s.patient for s in self.servers]
        present = [s for s in self.servers if s.patient is not None]
        if not present:
            return {}
        if None not in ids and len(set(ids)) == 1:
            return {"patient": present[0].patient}
        return {"fhirContext": [
            {"reference": f"{s.base_url}/Patient/{s.patient}", "role": LAUNCH_FULL_URL}
            for s in present
        ]}

    def authorization_details(self) -> list[dict[str, Any]]:
        return [s.detail() for s in self.servers]

    def to_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id, "subject": self.subject,
            "identity_scopes": list(self.identity_scopes), "fhir_user": self.fhir_user,
            "nonce": self.nonce, "auth_time": self.auth_time,
            "servers": [{"server_id": s.server_id, "base_url": s.base_url,
                         "fhir_version": s.fhir_version, "scopes": list(s.scopes),
                         "patient": s.patient} for s in self.servers],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grant:
        servers = tuple(
            ServerGrant(server_id=s["server_id"], base_url=s["base_url"],
                        fhir_version=s["fhir_version"], scopes=tuple(s["scopes"]),
                        patient=s["patient"])
            for s in data["servers"]
        )
        return cls(client_id=data["client_id"], subject=data["subject"], servers=servers,
                   identity_scopes=tuple(data["identity_scopes"]),
                   fhir_user=data["fhir_user"], nonce=data["nonce"],
                   auth_time=int(data["auth_time"]))
