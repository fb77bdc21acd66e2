"""Deployment keys of the realm file: ``listen`` per component (apart from its public URL),
``[deployment] trusted_proxies`` and ``drain_seconds``; a bad value names its key; the
listen parser is checked against every host:port shape by hypothesis."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.realm.config import ConfigError, default_config_text, parse_config
from smartrealm.realm.runner import components
from smartrealm.realm.toml_values import parse_listen
from smartrealm.serving.settings import listener_options


def _default() -> dict[str, Any]:
    return tomllib.loads(default_config_text())


def _error(data: dict[str, Any], tmp_path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, tmp_path)
    return caught.value


def test_listen_keys_separate_the_listener_from_the_public_url(tmp_path: Path) -> None:
    data = _default()
    data["auth_server"]["issuer"] = "https://as.example.org"
    data["auth_server"]["listen"] = "0.0.0.0:8080"
    data["resource_servers"][0]["listen"] = "[::]:9000"
    realm = parse_config(data, tmp_path)
    assert realm.auth_server.listen == ("0.0.0.0", 8080)
    assert realm.auth_server.issuer == "https://as.example.org"  # tokens, discovery, links
    found = {c.name: c for c in components(realm)}
    assert (found["auth_server"].host, found["auth_server"].port) == ("0.0.0.0", 8080)
    assert found["auth_server"].probe == "http://127.0.0.1:8080/readyz"
    assert (found["ehr"].host, found["ehr"].port) == ("::", 9000)
    assert found["ehr"].probe == "http://[::1]:9000/readyz"
    assert found["imaging"].listen is None  # listens at its public URL's host and port
    assert found["imaging"].probe.endswith(":8702/readyz")


@pytest.mark.parametrize(("where", "value"), [
    ("auth_server", "8080"), ("auth_server", "host:"), ("auth_server", ":80"),
    ("auth_server", "host:0"), ("auth_server", "host:65536"), ("auth_server", 8080),
    ("resource_servers", "host:port"),
])
def test_a_bad_listen_value_names_its_key(tmp_path: Path, where: str, value: object) -> None:
    data = _default()
    table = data["auth_server"] if where == "auth_server" else data["resource_servers"][1]
    table["listen"] = value
    key = "auth_server.listen" if where == "auth_server" else "resource_servers[1].listen"
    assert _error(data, tmp_path).key == key


def test_deployment_defaults_trust_no_proxy_and_do_not_drain(tmp_path: Path) -> None:
    realm = parse_config(_default(), tmp_path)
    assert realm.deployment.trusted_proxies == () and realm.deployment.drain_seconds == 0
    ehr = next(c for c in components(realm) if c.name == "ehr")
    options = listener_options(realm, ehr, "127.0.0.1", 1234)
    assert options["proxy_headers"] is False and options["access_log"] is False


def test_trusted_proxies_reach_uvicorn_and_only_they(tmp_path: Path) -> None:
    data = _default()
    data["deployment"] = {"trusted_proxies": ["10.0.0.0/8", "::1/128"], "drain_seconds": 5}
    realm = parse_config(data, tmp_path)
    assert realm.deployment.drain_seconds == 5
    ehr = next(c for c in components(realm) if c.name == "ehr")
    options = listener_options(realm, ehr, "0.0.0.0", 9000)
    assert options["proxy_headers"] is True
    assert options["forwarded_allow_ips"] == "10.0.0.0/8,::1/128"
    assert (options["host"], options["port"]) == ("0.0.0.0", 9000)


@pytest.mark.parametrize(("table", "key"), [
    ({"trusted_proxies": ["10.1.2.3/8"]}, "deployment.trusted_proxies"),
    ({"trusted_proxies": ["everyone"]}, "deployment.trusted_proxies"),
    ({"trusted_proxies": "10.0.0.0/8"}, "deployment.trusted_proxies"),
    ({"drain_seconds": -1}, "deployment.drain_seconds"),
    ({"drain_seconds": 301}, "deployment.drain_seconds"),
    ({"drain": 5}, "deployment.drain"),
])
def test_a_bad_deployment_value_names_its_key(tmp_path: Path, table: dict[str, Any],
                                              key: str) -> None:
    data = _default()
    data["deployment"] = table
    assert _error(data, tmp_path).key == key


_HOSTS = st.one_of(
    st.ip_addresses().map(str),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}", fullmatch=True))


@given(host=_HOSTS, port=st.integers(1, 65535))
def test_parse_listen_reads_back_every_host_and_port(host: str, port: int) -> None:
    written = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    assert parse_listen(written) == (host, port)


@given(text=st.text(max_size=40))
def test_parse_listen_accepts_only_host_colon_port(text: str) -> None:
    try:
        host, port = parse_listen(text)
    except ValueError as exc:
        assert "HOST:PORT" in str(exc)
        return
    assert host and 0 < port < 65536
    assert text.strip().endswith(str(port)) and host in text


def test_ipv6_without_brackets_is_read_at_the_last_colon() -> None:
    assert parse_listen("::1:8080") == ("::1", 8080)
    assert ipaddress.ip_address(parse_listen("[fe80::1]:443")[0]).version == 6


def test_metrics_are_for_loopback_unless_listed_and_an_empty_list_means_nobody(
        tmp_path: Path) -> None:
    default = parse_config(_default(), tmp_path).deployment.metrics_networks
    assert [str(n) for n in default] == ["127.0.0.0/8", "::1/128"]
    data = _default()
    data["deployment"] = {"metrics_networks": ["10.9.0.0/16"]}
    assert [str(n) for n in parse_config(data, tmp_path).deployment.metrics_networks] == [
        "10.9.0.0/16"]
    data["deployment"] = {"metrics_networks": []}
    assert parse_config(data, tmp_path).deployment.metrics_networks == ()
    data["deployment"] = {"metrics_networks": ["10.9.0.1/16"]}
    assert _error(data, tmp_path).key == "deployment.metrics_networks"
