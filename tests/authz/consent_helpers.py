"""Helpers of the lockout, picker and consent tests: an AS built with ``create_app`` (a fast
lockout policy, a clock the test moves) on the realm database of the ``realm`` fixture, and
form helpers for the consent page's checkboxes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html import unescape
from typing import Any

import httpx
from starlette.applications import Starlette

from smartrealm.authz.app import client_secrets, create_app, key_store, seed_config
from smartrealm.authz.lockout import LoginPolicy
from smartrealm.authz.records import Stores
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.oauth.client_secrets import ClientSecrets
from smartrealm.oauth.keys import KeyRing
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from tests.authz.conftest import csrf
from tests.authz.fhir_stub import FhirStub

FAST = LoginPolicy(base_delay=0.01, max_delay=0.02)
CHECKBOX = re.compile(r'<input type="checkbox" name="([^"]+)" value="([^"]*)"( checked)?>')


@dataclass
class Clock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def realm_secrets(realm: RealmConfig) -> ClientSecrets:
    """The realm's client-secret hash (its key in the realm's key store)."""
    return client_secrets(key_store(realm, make_engine(realm.database_url_for(None))))


def realm_stores(realm: RealmConfig) -> Stores:
    stores = sql_stores(make_engine(realm.database_url_for(None)))
    seed_config(realm, stores, 0, realm_secrets(realm))
    return stores


@asynccontextmanager
async def as_client(realm: RealmConfig, keys: KeyRing, stub: FhirStub, *,
                    policy: LoginPolicy = FAST, clock: Clock | None = None
                    ) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    """A user agent on a fresh AS app instance (same database: a "restart")."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stub.app())) as fhir:
        app = create_app(realm, realm_stores(realm), keys, realm_secrets(realm), http=fhir,
                         login_policy=policy, clock=clock or Clock())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport,
                                     base_url=realm.auth_server.issuer) as ua:
            yield ua, app


def checkboxes(page: str) -> list[tuple[str, str, bool]]:
    """(name, value, ticked) of every checkbox, in page order (values HTML-unescaped)."""
    return [(n, unescape(v), bool(c)) for n, v, c in CHECKBOX.findall(page)]


Field = tuple[str, str]


def ticked(page: str, *, untick: Collection[Field] = (), tick: Collection[Field] = ()
           ) -> list[Field]:
    """The checkbox fields a browser would post after the user changed ``untick``/``tick``."""
    return [(n, v) for n, v, on in checkboxes(page)
            if (on and (n, v) not in untick) or (n, v) in tick]


async def decide(ua: httpx.AsyncClient, page: httpx.Response, fields: list[Field], *,
                 remember: bool = False, decision: str = "approve") -> httpx.Response:
    """Post the consent form as a browser would: the hidden fields, the ticked boxes."""
    data: dict[str, list[str]] = {"csrf_token": [csrf(page.text)], "scope_choices": ["1"],
                                  "decision": [decision]}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    if remember:
        data["remember"] = ["1"]
    return await ua.post("/interaction/consent", data=data)


def per_server(body: dict[str, Any]) -> dict[str, list[str]]:
    """authorization_details as base URL → granted scopes."""
    return {d["locations"][0]: d["scope"].split() for d in body["authorization_details"]}
