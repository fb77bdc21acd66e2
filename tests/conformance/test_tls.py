"""Spec §12.1's TLS checks (``standalone_auth_tls``, ``standalone_token_tls``,
``ehr_auth_tls``, ``ehr_token_tls``, ``smart_backend_services_token_tls_version``) and g10's
"incorrectly permitted versions" (§12.6), against the default realm served over https
(``[tls]``, realm/tls.py) with a throwaway CA: TLS 1.2 and 1.3 are accepted, TLS 1.0 and 1.1
refused in the handshake, at the authorization and token endpoints (found through the FHIR
server's discovery, as Inferno finds them) and at every FHIR endpoint."""

from __future__ import annotations

import socket
import ssl
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from smartrealm.realm.config import RealmConfig, default_config_text, load_config
from smartrealm.realm.runner import AUTH_SERVER, Launch, free_ports, running_realm
from tests.realm.tls_certs import Certificates, make_certificates, tls_table

pytestmark = pytest.mark.e2e
ACCEPTED = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
REFUSED = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)


@dataclass(frozen=True)
class HttpsRealm:
    config: RealmConfig
    certs: Certificates


@pytest.fixture(scope="module")
def https_realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsRealm]:
    tmp = tmp_path_factory.mktemp("conformance-tls")
    certs = make_certificates(tmp)
    path = tmp / "realm.toml"
    path.write_text(default_config_text().replace("http://127.0.0.1", "https://127.0.0.1")
                    + "\n" + tls_table(certs))
    base = load_config(path)
    ports = free_ports([AUTH_SERVER, *(rs.id for rs in base.resource_servers)])
    config = base.relocated(ports, tmp / "state")
    with running_realm(config, Launch(path, ports, tmp / "state")) as running:
        yield HttpsRealm(config, certs)
        assert not running.exited(), running.exited()


def client_context(certs: Certificates, version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client speaking exactly ``version`` (security level 0 so that an old version is
    really offered, as a legacy stack would)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(certs.ca_file))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1/TLSv1_1 members
        context.minimum_version = version
        context.maximum_version = version
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def negotiated(certs: Certificates, url: str, version: ssl.TLSVersion) -> str | None:
    """The protocol a handshake with ``url``'s host settles on; None if refused."""
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.hostname and parts.port
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as raw, \
                client_context(certs, version).wrap_socket(
                    raw, server_hostname=parts.hostname) as tls:
            return tls.version()
    except ssl.SSLError:
        return None


def check_tls_versions(realm: HttpsRealm, url: str) -> None:
    for version in ACCEPTED:
        assert negotiated(realm.certs, url, version) == version.name.replace("v1_", "v1."), \
            (url, version)
    for version in REFUSED:
        assert negotiated(realm.certs, url, version) is None, (url, version)


def check_discovered_endpoint(realm: HttpsRealm, name: str) -> None:
    """"The authorize (token) endpoint supports TLS ≥1.2 and rejects older versions"; the
    endpoint is taken from the EHR's smart-configuration, fetched over https trusting the
    realm's CA."""
    ehr = realm.config.server("ehr").base_url
    verify = ssl.create_default_context(cafile=str(realm.certs.ca_file))
    config = httpx.get(f"{ehr}/.well-known/smart-configuration", verify=verify).json()
    check_tls_versions(realm, config[name])


def test_standalone_auth_tls(https_realm: HttpsRealm) -> None:
    """``standalone_auth_tls``: the authorization endpoint, TLS ≥1.2 only."""
    check_discovered_endpoint(https_realm, "authorization_endpoint")


def test_standalone_token_tls(https_realm: HttpsRealm) -> None:
    """``standalone_token_tls``: the token endpoint, TLS ≥1.2 only."""
    check_discovered_endpoint(https_realm, "token_endpoint")


def test_ehr_auth_tls(https_realm: HttpsRealm) -> None:
    """``ehr_auth_tls``: the authorization endpoint of the EHR launch, TLS ≥1.2 only."""
    check_discovered_endpoint(https_realm, "authorization_endpoint")


def test_ehr_token_tls(https_realm: HttpsRealm) -> None:
    """``ehr_token_tls``: the token endpoint of the EHR launch, TLS ≥1.2 only."""
    check_discovered_endpoint(https_realm, "token_endpoint")


def test_smart_backend_services_token_tls_version(https_realm: HttpsRealm) -> None:
    """``smart_backend_services_token_tls_version``: the token endpoint, TLS ≥1.2 only."""
    check_discovered_endpoint(https_realm, "token_endpoint")


def test_g10_tls_incorrectly_permitted_versions(https_realm: HttpsRealm) -> None:
    """g10 TLS "incorrectly permitted versions": no endpoint of the realm — the AS and every
    FHIR server — accepts TLS below 1.2."""
    urls = [https_realm.config.auth_server.issuer,
            *(rs.base_url for rs in https_realm.config.resource_servers)]
    for url in urls:
        check_tls_versions(https_realm, url)
