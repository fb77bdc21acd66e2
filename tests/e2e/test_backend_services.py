"""Backend Services on the really running realm (SMART §9, §12.1 group 3): a client whose JWK
Set is served by a real loopback server, registered through RFC 7591 or with
`smartrealm client add` while the AS runs, gets one client_credentials token for two FHIR
servers and reads at both."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartrealm.oauth.registration import BACKEND_SERVICES
from smartrealm.realm.config import RealmConfig
from tests.initial_tokens import bearer
from tests.oauth.assertion_keys import ClientKey, assertion_form, raw_rs384

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "smartrealm.cli"]


@dataclass
class JwksHost:
    """The client's own web server, publishing its public keys."""

    keys: list[ClientKey] = field(default_factory=list)
    cache_control: str = "max-age=300"
    hits: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks.json"


@pytest.fixture
def jwks_host() -> Iterator[JwksHost]:
    host = JwksHost(keys=[ClientKey.generate("RS384"), ClientKey.generate("ES384")])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host.hits += 1
            body = json.dumps({"keys": [k.public_jwk() for k in host.keys]}).encode()
            self.send_response(200 if self.path == "/jwks.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", host.cache_control)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    host.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield host
    server.shutdown()
    server.server_close()


async def _register(http: httpx.AsyncClient, realm: RealmConfig, **meta: Any) -> str:
    response = await http.post(realm.auth_server.registration_endpoint, json={
        "client_name": "e2e bulk", "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt", "scope": "system/*.rs", **meta},
        headers=bearer(realm, BACKEND_SERVICES))
    assert response.status_code == 201, response.text
    client_id: str = response.json()["client_id"]
    return client_id


async def _token(http: httpx.AsyncClient, realm: RealmConfig, client_id: str, key: ClientKey,
                 **extra: Any) -> httpx.Response:
    assertion = key.assertion(client_id, realm.auth_server.token_endpoint)
    return await http.post(realm.auth_server.token_endpoint, data=assertion_form(
        assertion, **{"grant_type": "client_credentials", "scope": "system/*.rs", **extra}))


async def _read(http: httpx.AsyncClient, url: str, token: str) -> httpx.Response:
    return await http.get(url, headers={"Authorization": f"Bearer {token}",
                                        "Accept": "application/fhir+json"})


async def test_one_token_reads_at_two_servers(live_realm: RealmConfig,
                                              http: httpx.AsyncClient,
                                              jwks_host: JwksHost) -> None:
    client_id = await _register(http, live_realm, jwks_uri=jwks_host.url)
    ehr, imaging = (live_realm.server(s).base_url for s in ("ehr", "imaging"))
    response = await _token(http, live_realm, client_id, jwks_host.keys[0],
                            resource=[ehr, imaging])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "system/*.rs"
    assert 0 < body["expires_in"] <= 300 and "refresh_token" not in body
    for base in (ehr, imaging):
        read = await _read(http, f"{base}/Patient/p0001", body["access_token"])
        assert read.status_code == 200, read.text
        search = await _read(http, f"{base}/Patient?_count=5", body["access_token"])
        assert search.json()["resourceType"] == "Bundle" and search.json()["entry"]
    lab = await _read(http, f"{live_realm.server('lab').base_url}/Patient/p0001",
                      body["access_token"])
    assert lab.status_code == 401  # not in the token's audience


async def test_jwks_uri_is_cached_within_max_age_and_es384_works(
        live_realm: RealmConfig, http: httpx.AsyncClient, jwks_host: JwksHost) -> None:
    client_id = await _register(http, live_realm, jwks_uri=jwks_host.url)
    for key in (jwks_host.keys[1], jwks_host.keys[1], jwks_host.keys[0]):
        response = await _token(http, live_realm, client_id, key)
        assert response.status_code == 200, response.text
    assert jwks_host.hits == 1


async def test_no_store_jwks_is_fetched_every_time(live_realm: RealmConfig,
                                                   http: httpx.AsyncClient,
                                                   jwks_host: JwksHost) -> None:
    jwks_host.cache_control = "no-store"
    client_id = await _register(http, live_realm, jwks_uri=jwks_host.url)
    for _ in range(2):
        assert (await _token(http, live_realm, client_id, jwks_host.keys[0])).status_code == 200
    assert jwks_host.hits == 2


async def test_failures_on_the_live_token_endpoint(live_realm: RealmConfig,
                                                   http: httpx.AsyncClient,
                                                   jwks_host: JwksHost) -> None:
    client_id = await _register(http, live_realm, jwks_uri=jwks_host.url)
    key = jwks_host.keys[0]
    bad_grant = await _token(http, live_realm, client_id, key, grant_type="not_a_grant_type")
    assert (bad_grant.status_code, bad_grant.json()["error"]) == (400, "unsupported_grant_type")
    bad_type = await _token(http, live_realm, client_id, key,
                            client_assertion_type="not_an_assertion_type")
    assert (bad_type.status_code, bad_type.json()["error"]) == (401, "invalid_client")
    stranger = await _token(http, live_realm, client_id, ClientKey.generate("RS384", key.kid))
    assert (stranger.status_code, stranger.json()["error"]) == (401, "invalid_client")
    wide = await _token(http, live_realm, client_id, key, scope="system/*.cruds")
    assert (wide.status_code, wide.json()["error"]) == (400, "invalid_scope")


def test_client_added_by_the_cli_while_the_realm_runs(live_realm: RealmConfig,
                                                      tmp_path: Path) -> None:
    key = ClientKey.generate("ES384")
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(key.jwks()))
    result = subprocess.run(
        [*CLI, "client", "add", "--name", "cli bulk", "--grant-type", "client_credentials",
         "--scope", "system/Patient.rs", "--jwks-file", str(jwks_file), "--server", "lab",
         "--client-id", "cli-bulk", "--data-dir", str(live_realm.data_dir)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr
    with httpx.Client(timeout=15) as http:
        assertion = key.assertion("cli-bulk", live_realm.auth_server.token_endpoint)
        response = http.post(live_realm.auth_server.token_endpoint, data=assertion_form(
            assertion, grant_type="client_credentials", scope="system/Patient.rs"))
        assert response.status_code == 200, response.text
        lab = live_realm.server("lab").base_url
        assert [d["locations"] for d in response.json()["authorization_details"]] == [[lab]]
        read = http.get(f"{lab}/Patient/p0002",
                        headers={"Authorization": f"Bearer {response.json()['access_token']}"})
        assert read.status_code == 200, read.text


async def test_fhir_servers_advertise_backend_services(live_realm: RealmConfig,
                                                       http: httpx.AsyncClient) -> None:
    for rs in live_realm.resource_servers:
        config = (await http.get(f"{rs.base_url}/.well-known/smart-configuration")).json()
        assert "client_credentials" in config["grant_types_supported"]
        assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
        assert {"RS384", "ES384"} <= set(config["token_endpoint_auth_signing_alg_values_supported"])
        assert "client-confidential-asymmetric" in config["capabilities"]


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                        st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3),
                        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
CLAIMS = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]
HEADERS = ["kid", "typ", "jku", "x5u", "jwk"]


def test_signed_assertions_with_arbitrary_claims_never_cause_a_500(
        live_realm: RealmConfig, jwks_host: JwksHost) -> None:
    """Well-signed assertions whose header and claims hold any JSON values: the answer is
    200 or an OAuth error, never a server error."""
    key = jwks_host.keys[0]
    token_url = live_realm.auth_server.token_endpoint
    with httpx.Client(timeout=15) as http:
        client_id = asyncio.run(_register_sync(live_realm, jwks_host))

        @settings(max_examples=60, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(claims=st.dictionaries(st.sampled_from(CLAIMS), JSON_VALUES),
               header=st.dictionaries(st.sampled_from(HEADERS), JSON_VALUES))
        def check(claims: dict[str, Any], header: dict[str, Any]) -> None:
            base = {"iss": client_id, "sub": client_id, "aud": token_url,
                    "exp": int(time.time()) + 120, "jti": secrets.token_urlsafe(12)}
            assertion = raw_rs384(key, {"alg": "RS384", "typ": "JWT", "kid": key.kid,
                                        **header}, {**base, **claims})
            response = http.post(token_url, data=assertion_form(
                assertion, grant_type="client_credentials", scope="system/*.rs"))
            assert response.status_code in (200, 400, 401), response.text
            if response.status_code != 200:
                assert response.json()["error"] in ("invalid_client", "invalid_request")

        check()


async def _register_sync(realm: RealmConfig, host: JwksHost) -> str:
    async with httpx.AsyncClient(timeout=15) as http:
        return await _register(http, realm, jwks_uri=host.url)
