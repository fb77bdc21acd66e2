"""`smartrealm serve` over https (realm/tls.py): a throwaway CA and a certificate for
127.0.0.1, every component on https, the whole multi-server flow with the client library
(trusting only that CA), the components calling each other over https (the AS's patient
lookups and capability checks, the FHIR servers' JWKS fetches and introspection), and
TLS older than 1.2 refused in the handshake (spec §4.1, §12.1 ``standalone_auth_tls``)."""

from __future__ import annotations

import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from smartrealm.client import (
    AuthorizationRequest,
    FhirSession,
    check_token_reuse,
    discover,
    exchange_code,
    parse_callback,
    register_client,
)
from smartrealm.devtools.useragent import authorize_as_user
from smartrealm.realm.config import RealmConfig, load_config
from tests.e2e.flow import PASSWORDS, REDIRECT_URI, SCOPE
from tests.e2e.serve import realm_file, serving
from tests.realm.tls_certs import Certificates, make_certificates, tls_table

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class HttpsRealm:
    realm: RealmConfig
    certs: Certificates

    def trusting(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certs.ca_file))


@pytest.fixture(scope="module")
def https_realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsRealm]:
    tmp = tmp_path_factory.mktemp("tls")
    certs = make_certificates(tmp)
    config = realm_file(tmp, scheme="https", extra=tls_table(certs))
    # The lab checks tokens by introspection: FHIR server → AS over https too.
    text = config.read_text().replace('profile = "lab"',
                                      'profile = "lab"\ntoken_check = "introspection"')
    config.write_text(text)
    with serving(config, tmp / "serve.log"):
        yield HttpsRealm(load_config(config), certs)


def _legacy_client(certs: Certificates, maximum: ssl.TLSVersion) -> ssl.SSLContext:
    """A client willing to speak TLS 1.0/1.1 (security level 0, as an old stack would)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(certs.ca_file))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1/TLSv1_1 members
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = maximum
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


async def test_the_multi_server_flow_over_https(https_realm: HttpsRealm) -> None:
    realm = https_realm.realm
    bases = [realm.server(s).base_url for s in ("ehr", "imaging", "lab")]
    assert all(b.startswith("https://127.0.0.1:") for b in bases)
    async with httpx.AsyncClient(timeout=15.0, verify=https_realm.trusting()) as http:
        configs = [await discover(http, base) for base in bases]
        decision = check_token_reuse(configs)  # AS capability checks ran over https
        decision.raise_if_impossible()
        assert configs[0].registration_endpoint is not None
        client = await register_client(http, configs[0].registration_endpoint,
                                       redirect_uris=[REDIRECT_URI], client_name="tls app",
                                       scope=SCOPE)
        request = AuthorizationRequest.create(
            authorization_endpoint=decision.authorization_endpoint,
            client_id=client["client_id"], redirect_uri=REDIRECT_URI, scope=SCOPE,
            resources=bases)
        async with httpx.AsyncClient(timeout=15.0, verify=https_realm.trusting()) as browser:
            callback = await authorize_as_user(browser, request.url, REDIRECT_URI,
                                               username="patient",
                                               password=PASSWORDS["patient"])
        tokens = await exchange_code(http, decision.token_endpoint, request,
                                     parse_callback(callback, request),
                                     client_id=client["client_id"])
        # The AS found the patient on each server over https (ids differ per server).
        ids = {base: tokens.patient_id_for(base) for base in bases}
        assert ids[bases[0]] == "p0012" and ids[bases[1]] == "img0012"
        # ehr and imaging check the signature (JWKS over https), the lab introspects.
        for base, kind in zip(bases, ("Patient", "ImagingStudy", "Observation"), strict=True):
            session = FhirSession(http, base, tokens)
            if kind == "Patient":
                assert (await session.read("Patient", str(ids[base])))["id"] == ids[base]
            else:
                bundle = await session.search(kind, {"patient": str(ids[base])})
                assert bundle["entry"], f"no {kind} on {base}"


def test_an_untrusted_certificate_is_refused(https_realm: HttpsRealm) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(https_realm.realm.auth_server.jwks_uri,
                  verify=ssl.create_default_context())


def _endpoints(realm: RealmConfig) -> list[tuple[str, str]]:
    return [("GET", realm.auth_server.authorization_endpoint),
            ("POST", realm.auth_server.token_endpoint),
            ("GET", realm.server("ehr").base_url + "/metadata")]


def test_tls_1_1_is_refused_and_tls_1_2_accepted(https_realm: HttpsRealm) -> None:
    old = _legacy_client(https_realm.certs, ssl.TLSVersion.TLSv1_1)
    modern = _legacy_client(https_realm.certs, ssl.TLSVersion.TLSv1_2)
    for method, url in _endpoints(https_realm.realm):
        with pytest.raises(httpx.ConnectError):
            httpx.request(method, url, verify=old)
        response = httpx.request(method, url, verify=modern)
        assert response.status_code in (200, 400), (url, response.status_code)
        host, port = urlsplit(url).hostname, urlsplit(url).port
        assert host is not None and port is not None
        assert _negotiated(old, host, port) is None
        assert _negotiated(modern, host, port) == "TLSv1.2"


def _negotiated(context: ssl.SSLContext, host: str, port: int) -> str | None:
    """The protocol a handshake settles on, None when the server refuses it."""
    try:
        with socket.create_connection((host, port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            return tls.version()
    except ssl.SSLError:
        return None


def test_the_legacy_client_does_speak_tls_1_1(tmp_path: Path) -> None:
    """Control: against a server that allows it, the same client settles on TLS 1.1, so
    the refusal above is the realm's doing, not the client's."""
    certs = make_certificates(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(certs.cert_file), str(certs.key_file))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = threading.Thread(target=_accept_once, args=(listener, server), daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        assert _negotiated(_legacy_client(certs, ssl.TLSVersion.TLSv1_1), "127.0.0.1",
                           port) == "TLSv1.1"
        thread.join(timeout=5)


def _accept_once(listener: socket.socket, context: ssl.SSLContext) -> None:
    connection, _ = listener.accept()
    try:
        with context.wrap_socket(connection, server_side=True):
            pass
    except (ssl.SSLError, OSError):
        pass
