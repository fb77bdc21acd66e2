"""Proxy mode on real processes (issue 4 "Proxy mode"): a realm whose ``ehr-proxy`` server is
a proxy in front of its built-in ``ehr`` server, each a uvicorn process on loopback. A user
signs in once for both; the multi-audience token works through the proxy, which answers with
its own base URLs (never the upstream's), and a token whose ``aud`` lacks the proxy is
refused there. The proxy reaches the upstream with the realm's self-token (upstream_auth =
"realm", the default)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smartrealm.realm.config import RealmConfig, load_config
from smartrealm.realm.runner import AUTH_SERVER, Launch, free_ports, running_realm
from tests.e2e.flow import full_flow

pytestmark = pytest.mark.e2e

REALM_FILE = """
[realm]
name = "Proxy realm"
sample_data = true
sample_patients = 12
[auth_server]
issuer = "http://127.0.0.1:{auth}"
[brands]
organization_name = "Proxy realm"
identifier_system = "urn:ietf:rfc:3986"
identifier_value = "https://proxy.example.org"
website = "https://proxy.example.org"
portal_name = "Proxy portal"
portal_url = "https://portal.proxy.example.org"
[[resource_servers]]
id = "ehr"
name = "EHR (built-in)"
base_url = "http://127.0.0.1:{ehr}/fhir"
profile = "ehr"
[[resource_servers]]
id = "ehr-proxy"
name = "EHR through the proxy"
base_url = "http://127.0.0.1:{proxy}/guarded/fhir"
mode = "proxy"
profile = "ehr"
upstream = "http://127.0.0.1:{ehr}/fhir"
[[users]]
username = "patient"
password = "patient-demo"
display_name = "Pat Example"
fhir_user_server = "ehr"
fhir_user = "Patient/p0012"
"""


@pytest.fixture(scope="module")
def proxy_realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealmConfig]:
    data_dir = tmp_path_factory.mktemp("proxy-realm")
    ports = free_ports([AUTH_SERVER, "ehr", "ehr-proxy"])
    path = data_dir / "realm.toml"
    path.write_text(REALM_FILE.format(auth=ports[AUTH_SERVER], ehr=ports["ehr"],
                                      proxy=ports["ehr-proxy"]), "utf-8")
    realm = load_config(path).relocated(ports, data_dir)
    with running_realm(realm, Launch(path, ports, data_dir)) as running:
        yield realm
        assert not running.exited(), f"a component died: {running.exited()}"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_multi_audience_token_works_through_the_proxy(proxy_realm: RealmConfig
                                                                ) -> None:
    ehr, proxy = (proxy_realm.server(s).base_url for s in ("ehr", "ehr-proxy"))
    async with httpx.AsyncClient(timeout=15.0) as http:
        tokens = await full_flow(http, proxy_realm, resources=[ehr, proxy])
        assert tokens.access_token is not None
        patient = await http.get(f"{proxy}/Patient/p0012", headers=_bearer(tokens.access_token))
        assert patient.status_code == 200, patient.text
        assert patient.json()["id"] == "p0012"
        search = await http.get(f"{proxy}/Observation", params={"_count": "2"},
                                headers=_bearer(tokens.access_token))
        assert search.status_code == 200, search.text
        body = search.json()
        assert ehr not in json.dumps(body)  # every upstream URL was rewritten
        links = {link["relation"]: link["url"] for link in body["link"]}
        assert links["self"].startswith(f"{proxy}/Observation?")
        assert links["next"].startswith(f"{proxy}/Observation?")
        assert [e["fullUrl"] for e in body["entry"]] == [
            f"{proxy}/Observation/{e['resource']['id']}" for e in body["entry"]]
        assert {e["resource"]["subject"]["reference"] for e in body["entry"]} == {
            "Patient/p0012"}
        other = await http.get(f"{proxy}/Patient/p0001", headers=_bearer(tokens.access_token))
        assert other.status_code == 403


async def test_a_token_without_the_proxy_in_aud_is_refused(proxy_realm: RealmConfig) -> None:
    ehr, proxy = (proxy_realm.server(s).base_url for s in ("ehr", "ehr-proxy"))
    async with httpx.AsyncClient(timeout=15.0) as http:
        tokens = await full_flow(http, proxy_realm, resources=[ehr])
        assert tokens.access_token is not None
        direct = await http.get(f"{ehr}/Patient/p0012", headers=_bearer(tokens.access_token))
        assert direct.status_code == 200
        refused = await http.get(f"{proxy}/Patient/p0012",
                                 headers=_bearer(tokens.access_token))
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]


async def test_discovery_is_the_proxys_own(proxy_realm: RealmConfig) -> None:
    proxy = proxy_realm.server("ehr-proxy").base_url
    async with httpx.AsyncClient(timeout=15.0) as http:
        metadata = (await http.get(f"{proxy}/metadata")).json()
        smart = (await http.get(f"{proxy}/.well-known/smart-configuration")).json()
    assert metadata["implementation"]["url"] == proxy
    assert metadata["rest"][0]["interaction"] == []
    assert "auth-multi-aud-token" in smart["capabilities"]
    assert smart["token_endpoint"] == proxy_realm.auth_server.token_endpoint


def test_realm_file_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "realm.toml"
    path.write_text(REALM_FILE.format(auth=1, ehr=2, proxy=3), "utf-8")
    server = load_config(path).server("ehr-proxy")
    assert (server.mode, server.upstream, server.upstream_auth) == (
        "proxy", "http://127.0.0.1:2/fhir", "realm")
