"""`smartrealm demo`: the "reuse one access token" flow, played for real.

The realm runs as separate processes on free loopback ports. The app side uses the client
library (discovery → brands → second server → reuse check → one authorize request with two
`resource`s → code → token); the user side fills the AS's real login and consent forms over
HTTP. Every step prints what happened; any failure ends the demo with exit status 1.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.parse import parse_qsl

import httpx
from rich.console import Console

from smartrealm.client.auth import (
    AuthorizationRequest,
    exchange_code,
    parse_callback,
    register_client,
)
from smartrealm.client.brands import fetch_brand_endpoints
from smartrealm.client.discovery import SmartConfiguration, discover
from smartrealm.client.errors import FhirUnauthorized, SmartClientError
from smartrealm.client.fhir import FhirSession
from smartrealm.client.reuse import check_token_reuse
from smartrealm.client.tokens import TokenSet
from smartrealm.core.urls import normalize_url
from smartrealm.devtools.useragent import PageLog, UserAgentError, authorize_as_user
from smartrealm.realm.config import RealmConfig
from smartrealm.realm.runner import Launch, RealmStartError, running_realm
from smartrealm.realm.tls import client_verify

SCOPE = ("launch/patient openid fhirUser patient/Patient.rs patient/Encounter.rs "
         "patient/Condition.rs patient/Observation.rs patient/ImagingStudy.rs "
         "patient/DiagnosticReport.rs")
# The demo app asks for the EHR and the imaging server; the lab server stays outside the
# token's audience, to show that it refuses the token.
WANTED = ("ehr", "imaging")
OUTSIDE = "lab"


class DemoError(RuntimeError):
    """A step of the demo did not give what the flow promises."""


def run_demo(realm: RealmConfig, launch: Launch, console: Console) -> bool:
    try:
        with running_realm(realm, launch):
            console.rule("[bold]1. The realm is running")
            console.print(f"  authorization server  {realm.auth_server.issuer}")
            for rs in realm.resource_servers:
                console.print(f"  {rs.id:<21} {rs.base_url}")
            asyncio.run(_play(realm, console))
    except (RealmStartError, DemoError, SmartClientError, UserAgentError,
            httpx.HTTPError) as exc:
        console.print(f"\n[bold red]demo failed:[/bold red] {type(exc).__name__}: {exc}")
        return False
    console.rule("[bold green]every step succeeded")
    return True


async def _play(realm: RealmConfig, console: Console) -> None:
    # The app and the user trust the realm's CA (realm/tls.py), like its components.
    async with httpx.AsyncClient(timeout=15.0, verify=client_verify(realm.tls)) as http:
        configs = await _discover(realm, http, console)
        token = await _authorize(realm, http, configs, console)
        await _read_everywhere(realm, http, configs, token, console)
        await _outside_audience(realm, http, token, console)


async def _discover(realm: RealmConfig, http: httpx.AsyncClient, console: Console
                    ) -> list[SmartConfiguration]:
    console.rule("[bold]2. Discovery: iss1 → brands → iss2")
    iss1 = realm.server(WANTED[0]).base_url
    first = await discover(http, iss1)
    console.print(f"  iss1 {iss1}\n    capabilities: {', '.join(first.capabilities)}")
    endpoints = await fetch_brand_endpoints(http, first)
    console.print(f"  brands bundle {first.brand_bundle_url} lists {len(endpoints)} endpoints:")
    for ep in endpoints:
        versions = ", ".join(ep.fhir_versions)
        console.print(f"    - {ep.name or ep.brand_name}: {ep.address} (FHIR {versions})")
    wanted = normalize_url(realm.server(WANTED[1]).base_url)
    iss2 = next((ep.address for ep in endpoints if normalize_url(ep.address) == wanted), None)
    if iss2 is None:
        raise DemoError(f"the brands bundle does not list {wanted}")
    second = await discover(http, iss2)
    console.print(f"  iss2 {iss2}\n    capabilities: {', '.join(second.capabilities)}")
    console.rule("[bold]3. Can one token serve both?")
    decision = check_token_reuse([first, second])
    console.print(f"  authorization endpoint: {decision.authorization_endpoint}")
    console.print(f"  token endpoint:         {decision.token_endpoint}")
    for reason in decision.reasons:
        console.print(f"  - {reason}")
    if not decision.possible:
        raise DemoError("token reuse is not possible: " + "; ".join(decision.reasons))
    console.print("  [green]yes[/green]: same AS endpoints, both advertise auth-multi-aud-token")
    return [first, second]


async def _authorize(realm: RealmConfig, http: httpx.AsyncClient,
                     configs: list[SmartConfiguration], console: Console) -> TokenSet:
    console.rule("[bold]4. One authorization request for both servers")
    redirect_uri = "http://127.0.0.1:9/demo-callback"  # the app's loopback redirect
    registration = configs[0].registration_endpoint
    if registration is None:
        raise DemoError("iss1 advertises no registration_endpoint")
    client = await register_client(http, registration, redirect_uris=[redirect_uri],
                                   client_name="smartrealm demo app", scope=SCOPE)
    client_id = str(client["client_id"])
    console.print(f"  registered public client {client_id} (RFC 7591)")
    request = AuthorizationRequest.create(
        authorization_endpoint=configs[0].authorization_endpoint, client_id=client_id,
        redirect_uri=redirect_uri, scope=SCOPE, resources=[c.base_url for c in configs])
    _print_authorize(request.url, console)
    user = next(u for u in realm.users if u.username == "patient")
    log = PageLog()
    async with httpx.AsyncClient(timeout=15.0, verify=client_verify(realm.tls)) as browser:
        callback = await authorize_as_user(browser, request.url, redirect_uri,
                                           username=user.username, password=user.password,
                                           log=log)
    for kind, _text in log.pages:
        console.print(f"  user '{user.username}' filled the {kind} page")
    code = parse_callback(callback, request)
    console.print("  the AS redirected back with a code (state checked)")
    token = await exchange_code(http, configs[0].token_endpoint, request, code,
                                client_id=client_id)
    _print_token(token, configs, console)
    return token


def _print_authorize(url: str, console: Console) -> None:
    endpoint, _, query = url.partition("?")
    console.print(f"  GET {endpoint}")
    for name, value in parse_qsl(query):
        shown = value[:10] + "…" if name in ("code_challenge", "state", "nonce") else value
        console.print(f"      {name} = {shown}")


def _print_token(token: TokenSet, configs: list[SmartConfiguration], console: Console) -> None:
    console.rule("[bold]5. The token")
    claims = _unverified_claims(token.access_token)
    console.print(f"  granted scope (union): {token.scope}")
    console.print(f"  token audience (aud, decoded for display): {claims.get('aud')}")
    for detail in token.authorization_details:
        console.print(f"  scopes at {', '.join(detail.get('locations', []))}:\n"
                      f"      {detail.get('scope', token.scope)}")
    if token.patient:
        console.print(f"  patient (same id on every server): {token.patient}")
    for item in token.fhir_context:
        console.print(f"  fhirContext {item.get('role')}: {item.get('reference')}")
    for config in configs:
        console.print(f"  patient id on {config.base_url}: "
                      f"[bold]{token.patient_id_for(config.base_url)}[/bold]")


def _unverified_claims(jwt: str) -> dict[str, Any]:
    """Display only: apps must treat access tokens as opaque (RFC 9068 §6)."""
    payload = jwt.split(".")[1]
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data if isinstance(data, dict) else {}


async def _read_everywhere(realm: RealmConfig, http: httpx.AsyncClient,
                           configs: list[SmartConfiguration], token: TokenSet,
                           console: Console) -> None:
    console.rule("[bold]6. One token, both servers, each server's own patient id")
    for config in configs:
        patient_id = token.patient_id_for(config.base_url)
        if patient_id is None:
            raise DemoError(f"no patient id for {config.base_url}")
        session = FhirSession(http, config.base_url, token.access_token)
        patient = await session.read("Patient", patient_id)
        console.print(f"  {config.base_url}/Patient/{patient_id}: {_name(patient)}, "
                      f"MRN {_mrn(patient)}")
        for resource_type, params in _reads_for(realm, config.base_url):
            bundle = await session.search(resource_type, {"patient": patient_id, **params,
                                                          "_count": "3"})
            await _show_bundle(resource_type, bundle, console)


READS: dict[str, list[tuple[str, dict[str, str]]]] = {
    "ehr": [("Encounter", {}), ("Condition", {}), ("Observation", {"category": "vital-signs"})],
    "imaging": [("ImagingStudy", {}), ("DiagnosticReport", {})],
}


def _reads_for(realm: RealmConfig, base_url: str) -> list[tuple[str, dict[str, str]]]:
    server = realm.server_by_url(base_url)
    return READS.get(server.profile, []) if server else []


async def _show_bundle(resource_type: str, bundle: dict[str, Any], console: Console) -> None:
    entries = [e["resource"] for e in bundle.get("entry", [])]
    console.print(f"    {resource_type}: {bundle.get('total', len(entries))} found, first "
                  f"{len(entries)}:")
    for resource in entries:
        console.print(f"      - {_summary(resource)}")


async def _outside_audience(realm: RealmConfig, http: httpx.AsyncClient, token: TokenSet,
                            console: Console) -> None:
    console.rule("[bold]7. A server outside the token's audience refuses it")
    outside = realm.server(OUTSIDE).base_url
    session = FhirSession(http, outside, token.access_token)
    try:
        await session.search("Patient", {"_count": "1"})
    except FhirUnauthorized as exc:
        console.print(f"  GET {outside}/Patient with the same token → [bold]401[/bold] "
                      f"error={exc.error}: {exc.error_description}")
        return
    raise DemoError(f"{outside} accepted a token not issued for it")


def _name(patient: dict[str, Any]) -> str:
    names = patient.get("name") or [{}]
    return " ".join([*names[0].get("given", []), names[0].get("family", "")]).strip() or "?"


def _mrn(patient: dict[str, Any]) -> str:
    return next((i.get("value", "?") for i in patient.get("identifier", [])), "?")


def _summary(resource: dict[str, Any]) -> str:
    code = resource.get("code") or resource.get("type") or {}
    if isinstance(code, list):
        code = code[0] if code else {}
    text = code.get("text") or next((c.get("display") for c in code.get("coding", [])), None)
    if resource["resourceType"] == "ImagingStudy":
        modality = next((m.get("code") for m in resource.get("modality", [])), "?")
        text = f"{modality} {resource.get('description', '')}".strip()
    when = (resource.get("effectiveDateTime") or resource.get("started")
            or resource.get("recordedDate") or (resource.get("period") or {}).get("start") or "")
    value = resource.get("valueQuantity")
    shown = f" = {value.get('value')} {value.get('unit', '')}" if value else ""
    return f"{resource['resourceType']}/{resource['id']} {text or ''}{shown} {when}".strip()

