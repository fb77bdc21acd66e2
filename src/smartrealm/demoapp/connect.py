"""Discovery and the authorization request, with the client library (discover,
check, authorize once, use everywhere).

Discovery starts at one FHIR base (the realm's EHR, or the ``iss`` of an EHR launch) and
follows its ``associated_endpoints`` (spec §1.3); the EHR and imaging servers must both be
among them, and one token must be usable at both (``check_token_reuse``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from smartrealm.client import (
    AuthorizationRequest,
    DiscoveryError,
    ReuseDecision,
    SmartConfiguration,
    check_token_reuse,
    discover,
)
from smartrealm.core.urls import normalize_url
from smartrealm.demoapp.sessions import Connection
from smartrealm.demoapp.settings import EHR_LAUNCH_SCOPE, STANDALONE_SCOPE, DemoSettings

ROLE_NAMES = {"ehr": "EHR", "imaging": "Imaging"}


@dataclass(frozen=True)
class Discovered:
    configs: tuple[SmartConfiguration, ...]  # the start server, then its associated ones
    ehr: SmartConfiguration
    imaging: SmartConfiguration
    decision: ReuseDecision

    @property
    def connections(self) -> tuple[Connection, ...]:
        return (Connection(self.ehr.base_url, "ehr", ROLE_NAMES["ehr"]),
                Connection(self.imaging.base_url, "imaging", ROLE_NAMES["imaging"]))

    def role_of(self, config: SmartConfiguration) -> str:
        for connection in self.connections:
            if normalize_url(connection.base_url) == normalize_url(config.base_url):
                return ROLE_NAMES[connection.role]
        return "not used by this app"


async def discover_realm(http: httpx.AsyncClient, settings: DemoSettings,
                         start: str | None = None) -> Discovered:
    """Discover ``start`` (default: the EHR) and the servers it names as associated."""
    first = await discover(http, start or settings.ehr_base)
    others = await asyncio.gather(*(discover(http, a.url) for a in first.associated_endpoints))
    configs = (first, *others)
    ehr = _find(configs, settings.ehr_base, first)
    imaging = _find(configs, settings.imaging_base, first)
    return Discovered(configs, ehr, imaging, check_token_reuse([ehr, imaging]))


def _find(configs: tuple[SmartConfiguration, ...], base: str,
          first: SmartConfiguration) -> SmartConfiguration:
    for config in configs:
        if normalize_url(config.base_url) == normalize_url(base):
            return config
    raise DiscoveryError(f"{first.base_url} does not name {base} among its "
                         "associated_endpoints, so one token cannot be used at both")


def standalone_request(settings: DemoSettings, found: Discovered) -> AuthorizationRequest:
    """Spec §5.2.1 standalone launch, one request for both servers (RFC 8707 resources)."""
    found.decision.raise_if_impossible()
    assert found.decision.authorization_endpoint is not None
    return AuthorizationRequest.create(
        authorization_endpoint=found.decision.authorization_endpoint,
        client_id=settings.client_id, redirect_uri=settings.redirect_uri,
        scope=STANDALONE_SCOPE, resources=[found.ehr.base_url, found.imaging.base_url])


def ehr_launch_request(settings: DemoSettings, found: Discovered, iss: str,
                       launch: str) -> AuthorizationRequest:
    """Spec §6.1 EHR launch: ``aud`` is the launching server (``iss``); the other server is
    added as a further ``resource`` so the same token serves it too."""
    found.decision.raise_if_impossible()
    assert found.decision.authorization_endpoint is not None
    return AuthorizationRequest.create(
        authorization_endpoint=found.decision.authorization_endpoint,
        client_id=settings.client_id, redirect_uri=settings.redirect_uri,
        scope=EHR_LAUNCH_SCOPE, aud=iss, launch=launch,
        resources=[iss, found.ehr.base_url, found.imaging.base_url])
