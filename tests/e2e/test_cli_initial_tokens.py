"""`smartrealm client initial-token issue|list|revoke` as an operator runs it (subprocesses on
a temporary realm database), and the printed token used at a live AS's /register."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from smartrealm.authz.stores.sql_initial_tokens import SqlInitialTokenStore
from smartrealm.realm.config import RealmConfig, load_config
from smartrealm.storage import make_engine
from tests.e2e.test_cli_clients import run
from tests.oauth.assertion_keys import ClientKey

pytestmark = pytest.mark.e2e
TOKEN = re.compile(r"Authorization: Bearer (\S+)")
BACKEND = {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
           "jwks": ClientKey.generate("ES384").jwks(), "scope": "system/*.rs"}


def test_issue_list_revoke(tmp_path: Path) -> None:
    issued = run("initial-token", "issue", "--allow", "backend-services", "--expires-in", "2h",
                 "--uses", "3", "--label", "partner", data_dir=tmp_path)
    assert issued.returncode == 0, issued.stderr
    match = TOKEN.search(issued.stdout)
    assert match and "shown only now" in issued.stdout
    value = match.group(1)
    realm = load_config(None).relocated({}, tmp_path)
    store = SqlInitialTokenStore.create(make_engine(realm.database_url_for(None)))
    found = store.find(value, int(time.time()))
    assert found is not None and found.allows == {"backend-services"} and found.uses_left == 3
    listed = run("initial-token", "list", data_dir=tmp_path).stdout
    assert found.id in listed and "partner" in listed and value not in listed
    assert run("initial-token", "revoke", found.id, data_dir=tmp_path).returncode == 0
    again = run("initial-token", "revoke", found.id, data_dir=tmp_path)
    assert again.returncode == 1 and "no initial access token" in again.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--allow", "superuser"), "choose from"),
    (("--expires-in", "31d"), "at most 30d"),
    (("--expires-in", "soon"), "--expires-in"),
    (("--uses", "0"), "--uses"),
])
def test_bad_options(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = run("initial-token", "issue", *args, data_dir=tmp_path)
    assert result.returncode == 2 and message in result.stderr + result.stdout


def test_a_printed_token_registers_a_backend_client(live_realm: RealmConfig) -> None:
    endpoint = live_realm.auth_server.registration_endpoint
    assert httpx.post(endpoint, json=BACKEND).status_code == 400  # anonymous: refused
    issued = run("initial-token", "issue", "--allow", "backend-services",
                 data_dir=live_realm.data_dir)
    match = TOKEN.search(issued.stdout)
    assert match, issued.stderr
    headers = {"Authorization": f"Bearer {match.group(1)}"}
    assert httpx.post(endpoint, json=BACKEND, headers=headers).status_code == 201
    assert httpx.post(endpoint, json=BACKEND, headers=headers).status_code == 401
