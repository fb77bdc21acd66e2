"""The app and the user of the end-to-end tests: the client library on one side, the scripted
user agent filling the AS's real pages on the other."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from smartrealm.client.auth import (
    AuthorizationRequest,
    exchange_code,
    parse_callback,
    register_client,
)
from smartrealm.client.discovery import discover
from smartrealm.client.tokens import TokenSet
from smartrealm.devtools.useragent import authorize_as_user
from smartrealm.realm.config import RealmConfig

REDIRECT_URI = "http://127.0.0.1:9/e2e-callback"
SCOPE = ("launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs "
         "patient/Encounter.rs patient/Condition.rs patient/ImagingStudy.rs "
         "patient/DiagnosticReport.rs")
PASSWORDS = {"patient": "patient-demo", "clinician": "clinician-demo"}


@dataclass
class App:
    client_id: str
    authorization_endpoint: str
    token_endpoint: str


async def register_app(http: httpx.AsyncClient, realm: RealmConfig, scope: str = SCOPE) -> App:
    config = await discover(http, realm.server("ehr").base_url)
    assert config.registration_endpoint is not None
    client = await register_client(http, config.registration_endpoint,
                                   redirect_uris=[REDIRECT_URI], client_name="e2e app",
                                   scope=scope)
    return App(str(client["client_id"]), config.authorization_endpoint, config.token_endpoint)


async def authorize(http: httpx.AsyncClient, app: App, *, resources: Sequence[str],
                    username: str = "patient", patient: str | None = None,
                    scope: str = SCOPE) -> tuple[AuthorizationRequest, str]:
    """Run the authorization request through login (and picker) and consent; return the
    request and the code."""
    request = AuthorizationRequest.create(
        authorization_endpoint=app.authorization_endpoint, client_id=app.client_id,
        redirect_uri=REDIRECT_URI, scope=scope, resources=list(resources))
    async with httpx.AsyncClient(timeout=15.0) as browser:
        callback = await authorize_as_user(browser, request.url, REDIRECT_URI,
                                           username=username, password=PASSWORDS[username],
                                           patient=patient)
    return request, parse_callback(callback, request)


async def full_flow(http: httpx.AsyncClient, realm: RealmConfig, *, resources: Sequence[str],
                    username: str = "patient", patient: str | None = None) -> TokenSet:
    app = await register_app(http, realm)
    request, code = await authorize(http, app, resources=resources, username=username,
                                    patient=patient)
    return await exchange_code(http, app.token_endpoint, request, code, client_id=app.client_id)
