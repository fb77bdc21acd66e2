"""The realm file's ``[tls]`` table (realm/tls.py): every bad value is reported by its key,
https components cannot start without a certificate, and the servers' TLS floor is 1.2."""

from __future__ import annotations

import ssl
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette

from smartrealm.realm.config import ConfigError, default_config_text, parse_config
from smartrealm.realm.tls import (
    TlsConfig,
    client_verify,
    enforce_minimum_version,
    require_for,
    uvicorn_options,
)
from tests.realm.tls_certs import Certificates, make_certificates


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    """server.pem, server.key, ca.pem in tmp_path, and other.key: a key of another cert."""
    (tmp_path / "other").mkdir()
    other = make_certificates(tmp_path / "other")
    (tmp_path / "other.key").write_bytes(other.key_file.read_bytes())
    return make_certificates(tmp_path)


def _with_tls(table: dict[str, Any]) -> dict[str, Any]:
    data = tomllib.loads(default_config_text())
    data["tls"] = table
    return data


def _error(table: dict[str, Any], base: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(_with_tls(table), base)
    return info.value


def test_a_valid_table_relative_to_the_realm_file(certs: Certificates, tmp_path: Path) -> None:
    realm = parse_config(_with_tls({"cert_file": "server.pem", "key_file": "server.key",
                                    "ca_file": str(certs.ca_file)}), tmp_path)
    assert realm.tls == TlsConfig(certs.cert_file, certs.key_file, certs.ca_file)
    assert realm.tls.serves
    assert not parse_config(_with_tls({}), tmp_path).tls.serves


@pytest.mark.parametrize(("table", "key"), [
    ({"cert": "x"}, "tls.cert"),
    ({"cert_file": "server.pem"}, "tls.key_file"),
    ({"key_file": "server.key"}, "tls.cert_file"),
    ({"cert_file": "missing.pem", "key_file": "server.key"}, "tls.cert_file"),
    ({"cert_file": 7, "key_file": "server.key"}, "tls.cert_file"),
    ({"cert_file": "server.key", "key_file": "server.key"}, "tls.cert_file"),  # no cert
    ({"cert_file": "server.pem", "key_file": "server.pem"}, "tls.key_file"),  # no key
    ({"cert_file": "server.pem", "key_file": "other.key"}, "tls.key_file"),  # not its key
    ({"ca_file": "server.key"}, "tls.ca_file"),
    ({"ca_file": "nowhere/ca.pem"}, "tls.ca_file"),
])
def test_bad_values_name_the_key(certs: Certificates, tmp_path: Path,
                                 table: dict[str, Any], key: str) -> None:
    assert _error(table, tmp_path).key == key


def test_https_components_need_the_certificate() -> None:
    urls = {"auth_server.issuer": "http://127.0.0.1:1",
            "resource_servers[1].base_url": "https://127.0.0.1:2/fhir"}
    with pytest.raises(ConfigError) as info:
        require_for(TlsConfig(), urls)
    assert info.value.key == "tls.cert_file"
    assert "resource_servers[1].base_url is https" in info.value.problem
    require_for(TlsConfig(), {"auth_server.issuer": "http://127.0.0.1:1"})


def test_serve_without_a_certificate_for_https_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "realm.toml"
    path.write_text(default_config_text().replace("http://127.0.0.1:8702",
                                                  "https://127.0.0.1:8702"))
    result = subprocess.run([sys.executable, "-m", "smartrealm.cli", "serve", "--config",
                             str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "tls.cert_file" in result.stderr and "resource_servers[1].base_url" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_only_https_components_serve_tls_and_never_below_1_2(certs: Certificates) -> None:
    tls = TlsConfig(certs.cert_file, certs.key_file, certs.ca_file)
    assert uvicorn_options(tls, "http://127.0.0.1:1") == {}
    options = uvicorn_options(tls, "https://127.0.0.1:1")
    assert options == {"ssl_certfile": str(certs.cert_file), "ssl_keyfile": str(certs.key_file)}
    config = uvicorn.Config(Starlette(), port=1, ssl_ciphers="DEFAULT:@SECLEVEL=0", **options)
    enforce_minimum_version(config)
    assert config.ssl is not None and config.ssl.minimum_version == ssl.TLSVersion.TLSv1_2
    plain = uvicorn.Config(Starlette(), port=1)
    enforce_minimum_version(plain)
    assert not plain.loaded  # left to uvicorn as it is


def test_outgoing_clients_trust_the_ca_on_top_of_the_usual_ones(certs: Certificates) -> None:
    usual = client_verify(TlsConfig())
    extra = client_verify(TlsConfig(ca_file=certs.ca_file))
    assert extra.cert_store_stats()["x509_ca"] == usual.cert_store_stats()["x509_ca"] + 1
    assert extra.minimum_version == ssl.TLSVersion.TLSv1_2
