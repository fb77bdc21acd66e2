"""The SSRF guard on the AS's fetches of clients' ``jwks_uri`` (authz/safe_fetch.py): the
address actually connected to is the one checked, a real host name resolving to loopback is
refused at connect time, DNS rebinding and redirects gain nothing, and at the token endpoint
a refused fetch is the client's ``401 invalid_client``, never a 500."""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from smartrealm.authz.app import build_auth_server
from smartrealm.authz.client_keys import ClientJwksCache
from smartrealm.authz.safe_fetch import ForbiddenAddress, PolicyTransport, policy_client
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.core.addresses import AddressPolicy, IPAddress, parse_networks
from smartrealm.oauth.store import PRIVATE_KEY_JWT, Client
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from tests.oauth.assertion_keys import ClientKey, assertion_form

KEY = ClientKey.generate("ES384", "ec-1")
PUBLIC_ONLY = AddressPolicy()
LOOPBACK_ALLOWED = AddressPolicy(parse_networks(["127.0.0.0/8", "::1/128"]))


@dataclass
class LoopbackJwks:
    port: int
    hits: int = 0


@pytest.fixture
def loopback_jwks() -> Iterator[LoopbackJwks]:
    """A real web server on 127.0.0.1 serving the client's JWK Set (and a redirect)."""
    state = LoopbackJwks(0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits += 1
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://10.0.0.1/jwks")
                self.end_headers()
                return
            body = json.dumps(KEY.jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time(
        loopback_jwks: LoopbackJwks) -> None:
    """``localhost`` is resolved by the system resolver like any name: refused unless the
    realm lists loopback — and then the very same request reaches the server."""
    url = f"http://localhost:{loopback_jwks.port}/jwks"
    async with policy_client(PUBLIC_ONLY) as http:
        with pytest.raises(ForbiddenAddress, match="loopback"):
            await http.get(url)
    assert loopback_jwks.hits == 0
    async with policy_client(LOOPBACK_ALLOWED) as http:
        assert (await http.get(url)).json() == KEY.jwks()
    assert loopback_jwks.hits == 1


async def test_ip_literals_are_checked_without_resolution(loopback_jwks: LoopbackJwks) -> None:
    async def no_dns(host: str, port: int) -> list[IPAddress]:
        raise AssertionError("an IP literal needs no resolution")

    client = httpx.AsyncClient(transport=PolicyTransport(PUBLIC_ONLY, resolver=no_dns))
    async with client as http:
        for url in (f"http://127.0.0.1:{loopback_jwks.port}/", "http://[::1]:9/",
                    "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]:9/"):
            with pytest.raises(ForbiddenAddress):
                await http.get(url)
    assert loopback_jwks.hits == 0


class Recorder(httpx.AsyncBaseTransport):
    """Stands in for the network: records where each request was sent."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(200, json=KEY.jwks())


def _resolver(*answers: str) -> Any:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in answers]
    return resolve


async def test_the_checked_address_is_the_one_connected_to() -> None:
    """No second lookup between check and connection: the request goes to the checked IP,
    Host and the TLS server name keep the name (the certificate is verified for it)."""
    recorder = Recorder()
    transport = PolicyTransport(PUBLIC_ONLY, resolver=_resolver("93.184.216.34"),
                                inner=recorder)
    async with httpx.AsyncClient(transport=transport) as http:
        await http.get("https://jwks.example.org/keys.json")
    (sent,) = recorder.sent
    assert sent.url.host == "93.184.216.34" and sent.url.path == "/keys.json"
    assert sent.headers["host"] == "jwks.example.org"
    assert sent.extensions["sni_hostname"] == "jwks.example.org"


@pytest.mark.parametrize("answers", [("127.0.0.1",), ("93.184.216.34", "10.0.0.7"),
                                     ("::ffff:169.254.169.254",), ("fd12::1",)])
async def test_rebinding_to_a_forbidden_address_is_refused(answers: tuple[str, ...]) -> None:
    """A name that passed registration (it was no IP literal) and now resolves — wholly or
    partly — to a forbidden address is never connected to."""
    recorder = Recorder()
    transport = PolicyTransport(PUBLIC_ONLY, resolver=_resolver(*answers), inner=recorder)
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(ForbiddenAddress):
            await http.get("https://jwks.example.org/keys.json")
    assert recorder.sent == []


async def test_redirects_are_not_followed_and_each_hop_would_be_checked(
        loopback_jwks: LoopbackJwks) -> None:
    url = f"http://127.0.0.1:{loopback_jwks.port}/redirect"
    async with policy_client(LOOPBACK_ALLOWED) as http:
        assert (await http.get(url)).status_code == 302  # not followed
        with pytest.raises(ForbiddenAddress, match=r"10\.0\.0\.1"):
            await http.get(url, follow_redirects=True)  # a caller that follows: checked
    cache = ClientJwksCache(policy_client(LOOPBACK_ALLOWED))
    assert await cache.document(url, "ec-1") is None


async def test_a_refused_fetch_is_invalid_client_at_the_token_endpoint(
        realm: RealmConfig, loopback_jwks: LoopbackJwks) -> None:
    """A client whose jwks_uri leads to loopback (stored as it might have been registered
    while its name pointed elsewhere) on a realm that does not allow loopback fetches: its
    assertion fails with 401 invalid_client, and the loopback server is never reached."""
    public_realm = replace(realm, auth_server=replace(realm.auth_server,
                                                      private_fetch_networks=()))
    stores = sql_stores(make_engine(public_realm.database_url_for(None)))
    stores.clients.put(Client(
        client_id="rebound", name="rebound", redirect_uris=(), auth_method=PRIVATE_KEY_JWT,
        scope="system/*.rs", grant_types=("client_credentials",),
        jwks_uri=f"http://localhost:{loopback_jwks.port}/jwks"))
    app = build_auth_server(public_realm)
    token_endpoint = public_realm.auth_server.token_endpoint
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=public_realm.auth_server.issuer) as ua:
        response = await ua.post("/token", data=assertion_form(
            KEY.assertion("rebound", token_endpoint), grant_type="client_credentials",
            scope="system/*.rs", resource=realm.server("ehr").base_url))
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert loopback_jwks.hits == 0
    # The same client on a realm that lists loopback gets its token: the refusal above was
    # the policy's doing, not an unreachable server.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_auth_server(realm)),
                                 base_url=realm.auth_server.issuer) as ua:
        allowed = await ua.post("/token", data=assertion_form(
            KEY.assertion("rebound", token_endpoint), grant_type="client_credentials",
            scope="system/*.rs", resource=realm.server("ehr").base_url))
    assert allowed.status_code == 200, allowed.text
    assert loopback_jwks.hits == 1
