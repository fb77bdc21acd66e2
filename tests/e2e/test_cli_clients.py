"""`smartrealm client add|list|remove` run as an operator runs it (subprocesses on a
temporary realm database): what it prints, its exit codes, and never a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from smartrealm.authz.app import client_secrets, key_store
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.oauth.client_secrets import Match
from smartrealm.realm.config import load_config
from smartrealm.storage import make_engine
from tests.oauth.assertion_keys import ClientKey

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "smartrealm.cli", "client"]


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args, "--data-dir", str(data_dir)], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def _client_id(output: str) -> str:
    match = re.search(r"client_id\s+(\S+)", output)
    assert match, output
    return match.group(1)


def test_add_list_remove(tmp_path: Path) -> None:
    assert "no clients yet" in run("list", data_dir=tmp_path).stdout
    assert json.loads(run("list", "--json", data_dir=tmp_path).stdout) == []
    public = run("add", "--name", "Phone app", "--redirect-uri", "org.example.app:/cb",
                 "--scope", "patient/*.rs launch/patient", data_dir=tmp_path)
    assert public.returncode == 0, public.stderr
    assert "client_secret" not in public.stdout and "auth method    none" in public.stdout
    secret = run("add", "--name", "Web app", "--secret", "--redirect-uri",
                 "https://app.example.org/cb", "--server", "ehr", data_dir=tmp_path)
    assert secret.returncode == 0, secret.stderr
    printed = re.search(r"client_secret\s+(\S+)", secret.stdout)
    assert printed and "shown only now" in secret.stdout
    backend = run("add", "--name", "Bulk", "--grant-type", "client_credentials", "--scope",
                  "system/*.rs", "--jwks-uri", "https://bulk.example.org/jwks.json",
                  "--client-id", "bulk-1", data_dir=tmp_path)
    assert backend.returncode == 0, backend.stderr

    listing = run("list", data_dir=tmp_path).stdout
    for text in ("Phone app", "Web app", "Bulk", "bulk-1", _client_id(public.stdout)):
        assert text in listing
    listed = {c["client_id"]: c for c in json.loads(run("list", "--json",
                                                        data_dir=tmp_path).stdout)}
    assert listed["bulk-1"]["grant_types"] == ["client_credentials"]
    assert listed["bulk-1"]["jwks_uri"] == "https://bulk.example.org/jwks.json"
    assert listed[_client_id(secret.stdout)]["allowed_servers"] == ["ehr"]
    assert not any("client_secret" in c for c in listed.values())
    realm = load_config(None).relocated({}, tmp_path)
    stored = sql_stores(make_engine(realm.database_url_for(None))).clients
    web = stored.get(_client_id(secret.stdout))
    assert web is not None and web.allowed_servers == ("ehr",)
    # Only the realm's keyed hash is kept (oauth/client_secrets.py).
    secrets = client_secrets(key_store(realm, make_engine(realm.database_url_for(None))))
    assert secrets.check(printed.group(1), web.secret_hash) is Match.YES

    removed = run("remove", "bulk-1", data_dir=tmp_path)
    assert removed.returncode == 0 and "removed client bulk-1" in removed.stdout
    assert "bulk-1" not in run("list", data_dir=tmp_path).stdout
    again = run("remove", "bulk-1", data_dir=tmp_path)
    assert again.returncode == 1 and "no client 'bulk-1'" in again.stderr


def test_jwks_file_holding_a_single_jwk(tmp_path: Path) -> None:
    key = ClientKey.generate("ES384", "k1")
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key.public_jwk()))
    result = run("add", "--name", "Bulk", "--grant-type", "client_credentials", "--scope",
                 "system/Patient.rs", "--jwks-file", str(path), data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    realm = load_config(None).relocated({}, tmp_path)
    client = sql_stores(make_engine(realm.database_url_for(None))).clients.get(
        _client_id(result.stdout))
    assert client is not None and client.jwks == key.jwks()


@pytest.mark.parametrize(("args", "code", "message"), [
    (["add", "--name", "x", "--redirect-uri", "http://app.example.org/cb"], 2,
     "invalid_redirect_uri"),
    (["add", "--name", "x"], 2, "redirect_uris is required"),
    (["add", "--name", "x", "--redirect-uri", "https://a.example/cb", "--secret", "--public"],
     2, "choose one of"),
    (["add", "--name", "x", "--grant-type", "client_credentials", "--scope", "system/*.rs",
      "--secret"], 2, "requires private_key_jwt"),
    (["add", "--name", "x", "--grant-type", "password"], 2, "grant_types"),
    (["add", "--name", "x", "--grant-type", "client_credentials", "--scope", "system/*.rs",
      "--jwks-file", "/nonexistent/jwks.json"], 2, "cannot read"),
    (["add", "--name", "x", "--redirect-uri", "https://a.example/cb", "--server", "mars"], 2,
     "not a server of this realm"),
    (["remove", "smartrealm-demo-app"], 1, "defined in the realm configuration"),
    (["remove", "ghost"], 1, "no client 'ghost'"),
])
def test_clear_errors(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    result = run(*args, data_dir=tmp_path)
    assert result.returncode == code, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split())


def test_bad_jwks_files(tmp_path: Path) -> None:
    base = ["add", "--name", "x", "--grant-type", "client_credentials", "--scope",
            "system/*.rs", "--jwks-file"]
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [ClientKey.generate("RS384").key.as_dict(
        private=True) | {"kid": "k"}]}))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    for path, message in ((private, "private key material"), (garbage, "is not JSON"),
                          (listed, "JWK Set or a JWK")):
        result = run(*base, str(path), data_dir=tmp_path)
        assert result.returncode == 2, result.stdout
        assert message in " ".join(result.stderr.split())


def test_duplicate_client_id_and_bad_config(tmp_path: Path) -> None:
    args = ["add", "--name", "x", "--redirect-uri", "https://a.example/cb", "--client-id",
            "same"]
    assert run(*args, data_dir=tmp_path).returncode == 0
    duplicate = run(*args, data_dir=tmp_path)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    config = tmp_path / "realm.toml"
    config.write_text("[realm]\nname = 3\n")
    broken = run("list", "--config", str(config), data_dir=tmp_path)
    assert broken.returncode == 2 and "config error" in broken.stderr
