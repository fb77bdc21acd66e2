"""What the demo app needs to know about the realm that serves it.

The app is a registered client like any other (``clients[]`` in the realm file): it is
served at ``{issuer}/demo-app`` when a configured client lists ``{issuer}/demo-app/callback``
among its redirect URIs. Everything else (endpoints, the other servers, scopes) it learns
the way any SMART app does, through discovery (spec §1) with ``smartrealm.client``."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from smartrealm.client.ehr_launch import check_issuer
from smartrealm.client.errors import UntrustedIssuer
from smartrealm.realm.config import RealmConfig
from smartrealm.realm.tls import client_verify

DEMO_PATH = "/demo-app"
# Standalone launch (spec §5.2.1): the app asks for a patient context; EHR launch (§6.1)
# carries ``launch`` instead. Read-only access to what the record page shows.
RESOURCE_SCOPES = ("patient/Patient.rs", "patient/Encounter.rs", "patient/Condition.rs",
                   "patient/Observation.rs", "patient/ImagingStudy.rs",
                   "patient/DiagnosticReport.rs")
STANDALONE_SCOPE = " ".join(("launch/patient", "openid", "fhirUser", *RESOURCE_SCOPES))
EHR_LAUNCH_SCOPE = " ".join(("launch", "openid", "fhirUser", *RESOURCE_SCOPES))


@dataclass(frozen=True)
class DemoSettings:
    realm_name: str
    base_url: str  # absolute URL of the app, e.g. http://127.0.0.1:8700/demo-app
    client_id: str
    # Where discovery starts: the EHR's FHIR base (its associated_endpoints name the rest).
    ehr_base: str
    imaging_base: str
    # Spec §6.1: an app SHALL only accept an ``iss`` it trusts; these are the realm's bases.
    trusted_iss: tuple[str, ...]
    # The realm's authorization endpoint (its origin goes into the pages' CSP form-action).
    authorization_endpoint: str = ""
    verify: ssl.SSLContext | bool = True
    secure_cookie: bool = False

    @property
    def path(self) -> str:
        """The app's path on its host (the Mount prefix)."""
        return urlsplit(self.base_url).path

    @property
    def redirect_uri(self) -> str:
        return self.base_url + "/callback"

    @property
    def launch_url(self) -> str:
        return self.base_url + "/launch"

    def trusts(self, iss: str) -> bool:
        try:
            check_issuer(iss, self.trusted_iss)  # the library's allow-list rule
        except UntrustedIssuer:
            return False
        return True


def demo_settings(realm: RealmConfig) -> DemoSettings | None:
    """The demo app of ``realm``, or None when no client is registered for it or the realm
    lacks an EHR or an imaging server (the record page shows one of each)."""
    base_url = realm.auth_server.issuer.rstrip("/") + DEMO_PATH
    client = next((c for c in realm.clients if base_url + "/callback" in c.redirect_uris),
                  None)
    ehr = next((rs for rs in realm.resource_servers if rs.profile == "ehr"), None)
    imaging = next((rs for rs in realm.resource_servers if rs.profile == "imaging"), None)
    if client is None or ehr is None or imaging is None:
        return None
    return DemoSettings(
        realm_name=realm.name, base_url=base_url, client_id=client.client_id,
        ehr_base=ehr.base_url, imaging_base=imaging.base_url,
        trusted_iss=tuple(rs.base_url for rs in realm.resource_servers),
        authorization_endpoint=realm.auth_server.authorization_endpoint,
        verify=client_verify(realm.tls),
        secure_cookie=urlsplit(base_url).scheme == "https")
