"""The in-memory stores (authz/stores/memory.py) beyond the shared contract suites: the same
stores take part in the periodic purge, and a whole authorization runs on them — no
database file, no database server."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import httpx

from smartrealm.authz.app import create_app, seed_config
from smartrealm.authz.maintenance import purgeable_stores
from smartrealm.authz.stores.memory import memory_stores
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.oauth.client_secrets import ClientSecrets
from smartrealm.oauth.keys import KeyRing, generate_key
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from tests.authz.conftest import Flow, authorize_code, exchange
from tests.authz.fhir_stub import FhirStub


def test_the_same_stores_take_part_in_the_purge(tmp_path: Path) -> None:
    sql = sql_stores(make_engine(f"sqlite:///{tmp_path / 'as.db'}"))
    assert set(purgeable_stores(memory_stores())) == set(purgeable_stores(sql))


async def test_an_authorization_runs_on_memory_stores(realm: RealmConfig) -> None:
    stores, keys = memory_stores(), KeyRing([generate_key()])
    secrets = ClientSecrets(os.urandom(32))
    seed_config(realm, stores, int(time.time()), secrets)
    stub = FhirStub(realm, keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stub.app())) as fhir:
        app = create_app(realm, stores, keys, secrets, http=fhir)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=realm.auth_server.issuer) as ua:
            flow = Flow(realm)
            code = await authorize_code(ua, flow)
            first = await exchange(ua, flow, code)
            replay = await exchange(ua, flow, code)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["token_type"] == "Bearer" and body["patient"]
    assert stores.tokens.get(_claims(body["access_token"])["jti"]) is not None
    # The code was claimed once, in memory: the second exchange is refused.
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert not any(realm.data_dir.glob("*.db"))  # no database file was written


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
