"""What a user approved: one ``ServerGrant`` per server of the audience (its scopes and the
patient's id there) plus the identity scopes that are not server specific.

The grant is what an authorization code carries, and what access tokens, token responses and
``authorization_details`` (SMART §10.1) are rendered from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

# The fhirContext role for a full-URL patient reference (docs/behaviour.md, spec §6.5).
LAUNCH_FULL_URL = "launch-full-url"
DETAILS_TYPE = "smart_on_fhir"


@dataclass(frozen=True)
class ServerGrant:
    server_id: str
    base_url: str
    fhir_version: str
    scopes: tuple[str, ...]
    patient: str | None = None
    encounter: str | None = None  # the Encounter's id on this server (launch/encounter)
    # EHR launch (§6.1): the launch's fhirContext items, relative references on this server.
    fhir_context: tuple[dict[str, Any], ...] = ()

    def detail(self) -> dict[str, Any]:
        """This server's ``authorization_details`` entry (SMART §10.1, CONTRACT)."""
        entry: dict[str, Any] = {"type": DETAILS_TYPE, "locations": [self.base_url],
                                 "fhirVersions": [self.fhir_version],
                                 "scope": " ".join(self.scopes)}
        if self.patient is not None:
            entry["patient"] = self.patient
        if self.encounter is not None:
            entry["encounter"] = self.encounter
        if self.fhir_context:
            entry["fhirContext"] = list(self.fhir_context)
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
    # EHR launch context (§4.4): None = not an EHR launch (the token response's defaults).
    need_patient_banner: bool | None = None
    smart_style_url: str | None = None
    intent: str | None = None

    @property
    def base_urls(self) -> list[str]:
        return [s.base_url for s in self.servers]

    @property
    def scope(self) -> str:
        """The union over servers plus identity scopes (docs/behaviour.md: response ``scope``)."""
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
        """The multi-server context rule (docs/behaviour.md, §6.5): top-level ``patient``
        only when the patient has the same id on every server of the audience; otherwise
        one ``launch-full-url`` fhirContext item per server where the patient exists."""
        context = {**self._encounter_context(), **self._launch_context()}
        ids = [s.patient for s in self.servers]
        present = [s for s in self.servers if s.patient is not None]
        if not present:
            return context
        if None not in ids and len(set(ids)) == 1:
            return {"patient": present[0].patient, **context}
        return {**context, "fhirContext": [
            {"reference": f"{s.base_url}/Patient/{s.patient}", "role": LAUNCH_FULL_URL}
            for s in present
        ]}

    def _encounter_context(self) -> dict[str, Any]:
        # SMART §4.4 top-level ``encounter`` for a single-server grant; with several
        # servers the encounter is valid only where it lives, so it travels only in that
        # server's authorization_details entry (§10.1).
        if len(self.servers) == 1 and self.servers[0].encounter is not None:
            return {"encounter": self.servers[0].encounter}
        return {}

    def _launch_context(self) -> dict[str, Any]:
        # EHR launch (§4.4, §6.1): banner, style and intent as the launch set them; its
        # fhirContext items are relative to their server, so top-level only when that is
        # the only server (with several they stay in its authorization_details entry).
        launch = {"need_patient_banner": self.need_patient_banner,
                  "smart_style_url": self.smart_style_url, "intent": self.intent}
        context: dict[str, Any] = {k: v for k, v in launch.items() if v is not None}
        if len(self.servers) == 1 and self.servers[0].fhir_context:
            context["fhirContext"] = list(self.servers[0].fhir_context)
        return context

    def authorization_details(self) -> list[dict[str, Any]]:
        return [s.detail() for s in self.servers]

    def to_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id, "subject": self.subject,
            "identity_scopes": list(self.identity_scopes), "fhir_user": self.fhir_user,
            "nonce": self.nonce, "auth_time": self.auth_time,
            "servers": [{"server_id": s.server_id, "base_url": s.base_url,
                         "fhir_version": s.fhir_version, "scopes": list(s.scopes),
                         "patient": s.patient, "encounter": s.encounter,
                         "fhir_context": list(s.fhir_context)}
                        for s in self.servers],
            "need_patient_banner": self.need_patient_banner,
            "smart_style_url": self.smart_style_url, "intent": self.intent,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grant:
        servers = tuple(
            ServerGrant(server_id=s["server_id"], base_url=s["base_url"],
                        fhir_version=s["fhir_version"], scopes=tuple(s["scopes"]),
                        patient=s["patient"], encounter=s.get("encounter"),
                        fhir_context=tuple(s.get("fhir_context", ())))
            for s in data["servers"]
        )
        return cls(client_id=data["client_id"], subject=data["subject"], servers=servers,
                   identity_scopes=tuple(data["identity_scopes"]),
                   fhir_user=data["fhir_user"], nonce=data["nonce"],
                   auth_time=int(data["auth_time"]),
                   need_patient_banner=data.get("need_patient_banner"),
                   smart_style_url=data.get("smart_style_url"), intent=data.get("intent"))
