"""``multi_aud_token`` under ``[[resource_servers]]``: parsed and validated by key, and what
it changes in the servers' ``.well-known/smart-configuration`` (spec §1.1, §1.3, §10.2)."""

import tomllib
from pathlib import Path

import pytest

from smartrealm.fhir.http.capability import smart_configuration
from smartrealm.fhir.settings import FhirSettings
from smartrealm.realm.config import ConfigError, default_config_text, parse_config

MULTI = "auth-multi-aud-token"


def _realm_data(lab_value: object | None) -> dict:  # type: ignore[type-arg]
    data = tomllib.loads(default_config_text())
    if lab_value is not None:
        lab = next(rs for rs in data["resource_servers"] if rs["id"] == "lab")
        lab["multi_aud_token"] = lab_value
    return data


@pytest.mark.parametrize("bad", ["no", 0, 1, "false", []])
def test_bad_value_names_the_key(tmp_path: Path, bad: object) -> None:
    data = _realm_data(bad)
    index = [rs["id"] for rs in data["resource_servers"]].index("lab")
    with pytest.raises(ConfigError) as info:
        parse_config(data, tmp_path)
    assert info.value.key == f"resource_servers[{index}].multi_aud_token"
    assert info.value.problem == "must be true or false"


def test_default_is_true_and_every_server_lists_the_capability(tmp_path: Path) -> None:
    realm = parse_config(_realm_data(None), tmp_path)
    assert all(rs.multi_aud_token for rs in realm.resource_servers)
    for rs in realm.resource_servers:
        config = smart_configuration(FhirSettings(realm, rs.id))
        assert MULTI in config["capabilities"]
        assert all(e["capabilities"] == [MULTI] for e in config["associated_endpoints"])


def test_false_drops_the_capability_here_and_in_the_others_associated_endpoints(
        tmp_path: Path) -> None:
    realm = parse_config(_realm_data(False), tmp_path)
    assert not realm.server("lab").multi_aud_token
    lab = smart_configuration(FhirSettings(realm, "lab"))
    assert MULTI not in lab["capabilities"] and "context-style" in lab["capabilities"]
    # The lab still names its siblings, which do accept shared tokens.
    assert [(e["url"], e["capabilities"]) for e in lab["associated_endpoints"]] == [
        (realm.server("ehr").base_url, [MULTI]), (realm.server("imaging").base_url, [MULTI])]
    ehr = smart_configuration(FhirSettings(realm, "ehr"))
    assert MULTI in ehr["capabilities"]
    assert [(e["url"], e["capabilities"]) for e in ehr["associated_endpoints"]] == [
        (realm.server("imaging").base_url, [MULTI]), (realm.server("lab").base_url, [])]
