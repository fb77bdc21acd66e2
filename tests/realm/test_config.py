import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.core.urls import normalize_url
from smartrealm.realm.config import ConfigError, default_config_text, load_config, parse_config


def _default() -> dict:  # type: ignore[type-arg]
    return tomllib.loads(default_config_text())


def _error(data: dict, tmp_path: Path) -> ConfigError:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as info:
        parse_config(data, tmp_path)
    return info.value


def test_default_realm_matches_the_documented_layout() -> None:
    realm = load_config()
    assert realm.auth_server.issuer == "http://127.0.0.1:8700"
    assert realm.server("ehr").base_url == "http://127.0.0.1:8701/fhir"
    assert realm.server("imaging").base_url == "http://127.0.0.1:8702/fhir"
    assert {u.username for u in realm.users} == {"clinician", "patient"}
    assert realm.registration_open()  # loopback only → open registration
    assert realm.sample_patients >= 20


def test_bad_url_names_the_key(tmp_path: Path) -> None:
    data = _default()
    data["resource_servers"][1]["base_url"] = "not a url"
    err = _error(data, tmp_path)
    assert err.key == "resource_servers[1].base_url"
    assert "absolute http(s) URL" in err.problem


def test_unknown_key_is_named(tmp_path: Path) -> None:
    data = _default()
    data["auth_server"]["isser"] = "typo"
    assert _error(data, tmp_path).key == "auth_server.isser"


def test_wrong_type_is_named(tmp_path: Path) -> None:
    data = _default()
    data["auth_server"]["access_token_lifetime"] = "an hour"
    err = _error(data, tmp_path)
    assert err.key == "auth_server.access_token_lifetime" and "integer" in err.problem


def test_user_pointing_to_unknown_server(tmp_path: Path) -> None:
    data = _default()
    data["users"][0]["fhir_user_server"] = "nowhere"
    assert _error(data, tmp_path).key == "users[0].fhir_user_server"


def test_duplicate_server_id(tmp_path: Path) -> None:
    data = _default()
    data["resource_servers"][1]["id"] = "ehr"
    assert _error(data, tmp_path).key == "resource_servers[1].id"


def test_plain_http_off_loopback_refused_unless_allowed(tmp_path: Path) -> None:
    data = _default()
    data["resource_servers"][0]["base_url"] = "http://fhir.hospital.example/fhir"
    err = _error(data, tmp_path)
    assert err.key == "resource_servers[0].base_url" and "plain http" in err.problem
    data["realm"]["allow_insecure_http"] = True
    realm = parse_config(data, tmp_path)
    assert not realm.loopback_only() and not realm.registration_open()


def test_https_off_loopback_is_fine_and_closes_registration(tmp_path: Path) -> None:
    data = _default()
    data["auth_server"]["issuer"] = "https://auth.hospital.example"
    realm = parse_config(data, tmp_path)
    assert not realm.registration_open()


def test_redirect_uri_with_fragment_refused(tmp_path: Path) -> None:
    data = _default()
    data["clients"][0]["redirect_uris"] = ["https://app.example/cb#frag"]
    assert _error(data, tmp_path).key == "clients[0].redirect_uris[0]"


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "realm.toml"
    bad.write_text("[realm\nname=")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert "not valid TOML" in info.value.problem
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.toml")
    assert info.value.key == "--config"


def test_relocated_moves_ports_and_redirects() -> None:
    realm = load_config().relocated({"auth_server": 9100, "ehr": 9101}, Path("/tmp/x"))
    assert realm.auth_server.issuer == "http://127.0.0.1:9100"
    assert realm.server("ehr").base_url == "http://127.0.0.1:9101/fhir"
    assert realm.server("imaging").base_url == "http://127.0.0.1:8702/fhir"
    assert realm.clients[0].redirect_uris[0].startswith("http://127.0.0.1:9100/")
    assert realm.data_dir == Path("/tmp/x")


@given(st.sampled_from(["http", "HTTP", "https"]),
       st.sampled_from(["Host.Example", "host.example"]),
       st.sampled_from(["/fhir", "/fhir/", "/fhir//"]))
def test_normalize_url_ignores_case_of_scheme_host_and_trailing_slash(
        scheme: str, host: str, path: str) -> None:
    assert normalize_url(f"{scheme}://{host}{path}") == f"{scheme.lower()}://host.example/fhir"


def test_database_url_per_component(tmp_path: Path) -> None:
    data = _default()
    realm = parse_config(data, tmp_path)
    assert realm.database_url_for(None).endswith("/.smartrealm/auth.db")
    assert realm.database_url_for("ehr").endswith("/.smartrealm/ehr.db")
    data["database"]["url"] = "postgresql+psycopg://u@db/realm"
    realm = parse_config(data, tmp_path)
    assert realm.database_url_for("imaging") == (
        "postgresql+psycopg://u@db/realm?smartrealm_schema=imaging")


@pytest.mark.parametrize(("value", "problem"), [
    (["10.1.2.3/16"], "host bits"), (["loopback"], "CIDR"), ("127.0.0.0/8", "list of strings"),
    ([8], "list of strings"),
])
def test_private_fetch_networks_are_validated(tmp_path: Path, value: object,
                                              problem: str) -> None:
    data = _default()
    data["auth_server"]["private_fetch_networks"] = value
    err = _error(data, tmp_path)
    assert err.key == "auth_server.private_fetch_networks" and problem in err.problem


def test_private_fetch_networks_default_to_none(tmp_path: Path) -> None:
    """Absent: public addresses only; the default (loopback) realm lists loopback itself."""
    data = _default()
    assert [str(n) for n in load_config().auth_server.private_fetch_networks] == [
        "127.0.0.0/8", "::1/128"]
    del data["auth_server"]["private_fetch_networks"]
    assert parse_config(data, tmp_path).auth_server.private_fetch_networks == ()
