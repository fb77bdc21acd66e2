"""Multi-server rules (design.md; issue 3): servers share a token only if each advertises
``auth-multi-aud-token`` in its own smart-configuration (checked over real HTTP against
loopback servers, cached); a client limited to some servers gets ``invalid_target`` for the
others; patient ids come from the realm's patient index
(tests/authz/test_patient_index.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest

from smartrealm.authz.app import create_app
from smartrealm.oauth.keys import KeyRing
from smartrealm.oauth.store import Client
from smartrealm.realm.config import RealmConfig
from tests.authz.conftest import Flow, redirect_params, start
from tests.authz.consent_helpers import realm_secrets, realm_stores


class _Servers(BaseHTTPRequestHandler):
    """``/with/fhir`` and ``/imaging/fhir`` advertise the capability, ``/without/fhir``
    (an external server that only shares this AS) does not."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if not self.path.endswith("/fhir/.well-known/smart-configuration"):
            self.send_error(404)
            return
        capabilities = ["launch-standalone", "client-public"]
        if not self.path.startswith("/without/"):
            capabilities.append("auth-multi-aud-token")
        body = json.dumps({"capabilities": capabilities}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def loopback() -> Iterator[tuple[str, list[str]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Servers)
    seen = _Servers.seen
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


@pytest.fixture
def external_realm(realm: RealmConfig, loopback: tuple[str, list[str]]) -> RealmConfig:
    base = loopback[0]
    urls = {"ehr": f"{base}/with/fhir", "imaging": f"{base}/imaging/fhir",
            "lab": f"{base}/without/fhir"}
    return replace(realm, resource_servers=tuple(
        replace(rs, base_url=urls[rs.id]) for rs in realm.resource_servers))


@pytest.fixture
async def ua(external_realm: RealmConfig, keys: KeyRing) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:  # the AS's real outbound client
        app = create_app(external_realm, realm_stores(external_realm), keys,
                         realm_secrets(external_realm), http=http)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=external_realm.auth_server.issuer) as client:
            yield client


async def test_servers_that_advertise_the_capability_share_a_token(
        ua: httpx.AsyncClient, external_realm: RealmConfig) -> None:
    page = await start(ua, Flow(external_realm, resources=("ehr", "imaging")))
    assert str(page.url).endswith("/interaction/login")


async def test_a_server_without_the_capability_is_an_invalid_target(
        ua: httpx.AsyncClient, external_realm: RealmConfig) -> None:
    flow = Flow(external_realm, resources=("ehr", "imaging", "lab"))
    response = await ua.get("/authorize", params=flow.params())
    params = redirect_params(response)
    assert params["error"] == "invalid_target" and params["state"] == flow.state
    assert external_realm.server("lab").base_url in params["error_description"]
    assert "code" not in params


async def test_alone_it_is_an_ordinary_smart_launch(ua: httpx.AsyncClient,
                                                    external_realm: RealmConfig) -> None:
    page = await start(ua, Flow(external_realm, resources=("lab",)))
    assert str(page.url).endswith("/interaction/login")


async def test_answers_are_cached(ua: httpx.AsyncClient, external_realm: RealmConfig,
                                  loopback: tuple[str, list[str]]) -> None:
    seen = loopback[1]
    before = len(seen)
    for _ in range(3):
        await start(ua, Flow(external_realm, resources=("ehr", "imaging")))
    assert len(seen) - before <= 2  # at most one fetch per server (another test may have)


async def test_an_unreachable_server_is_an_invalid_target(
        external_realm: RealmConfig, keys: KeyRing) -> None:
    down = replace(external_realm, resource_servers=tuple(
        replace(rs, base_url="http://127.0.0.1:9/fhir") if rs.id == "imaging" else rs
        for rs in external_realm.resource_servers))
    async with httpx.AsyncClient() as http:
        app = create_app(down, realm_stores(down), keys, realm_secrets(down), http=http)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=down.auth_server.issuer) as ua:
            flow = Flow(down, resources=("ehr", "imaging"))
            params = redirect_params(await ua.get("/authorize", params=flow.params()))
            assert params["error"] == "invalid_target"


async def test_a_client_limited_to_some_servers(ua: httpx.AsyncClient, realm: RealmConfig,
                                                external_realm: RealmConfig) -> None:
    stores = realm_stores(external_realm)
    flow = Flow(external_realm, resources=("ehr", "imaging"), client_id="limited")
    stores.clients.put(Client("limited", "Limited", (flow.redirect_uri,),
                              allowed_servers=("ehr",)))
    params = redirect_params(await ua.get("/authorize", params=flow.params()))
    assert params["error"] == "invalid_target" and params["state"] == flow.state
    only_ehr = await start(ua, Flow(external_realm, resources=("ehr",), client_id="limited"))
    assert str(only_ehr.url).endswith("/interaction/login")

