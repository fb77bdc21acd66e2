"""`smartrealm client add --client-id rs:…` is refused: ``rs:<server id>`` are the resource
servers' own identities at the introspection endpoint (storage/rs_credentials.py), so a
registered client must never be able to take one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartrealm.oauth.client_secrets import ClientSecrets
from smartrealm.oauth.errors import InvalidClientMetadata
from smartrealm.oauth.registration import register
from smartrealm.realm.config import load_config
from tests.e2e.test_cli_clients import run

pytestmark = pytest.mark.e2e
META = {"client_name": "x", "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "none"}
SECRETS = ClientSecrets(b"k" * 32)


@pytest.mark.parametrize("client_id", ["rs:ehr", "rs:", "rs:anything"])
def test_register_refuses_the_reserved_prefix(client_id: str) -> None:
    with pytest.raises(InvalidClientMetadata, match="reserved"):
        register(META, 0, load_config(), client_id, secrets=SECRETS)


def test_a_similar_id_is_fine() -> None:
    registration = register(META, 0, load_config(), "rsx:ehr", secrets=SECRETS)
    assert registration.client.client_id == "rsx:ehr"


def test_client_add_refuses_rs_ids(tmp_path: Path) -> None:
    result = run("add", "--name", "sneaky", "--client-id", "rs:ehr", "--secret",
                 "--redirect-uri", "https://app.example/cb", data_dir=tmp_path)
    assert result.returncode == 2
    assert "invalid_client_metadata" in result.stdout + result.stderr
    assert "reserved" in result.stdout + result.stderr
    assert json.loads(run("list", "--json", data_dir=tmp_path).stdout) == []
