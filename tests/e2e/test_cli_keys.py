"""`smartrealm keys list|rotate` and `smartrealm purge` run as an operator runs them
(subprocesses on a temporary realm database, the AS not running)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from smartrealm.authz.app import key_store
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.oauth.grants import Grant, ServerGrant
from smartrealm.oauth.key_rotation import RotatingKeyRing
from smartrealm.oauth.keys import generate_key
from smartrealm.oauth.store import RefreshToken
from smartrealm.realm.config import load_config
from smartrealm.storage import make_engine

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "smartrealm.cli"]
GRANT = Grant("app", "ann", (ServerGrant("ehr", "http://h/fhir", "4.0.1", ("patient/*.rs",)),))


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args, "--data-dir", str(data_dir)], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def _state(data_dir: Path) -> None:
    """What a first start of the AS leaves: the realm database with one key."""
    realm = load_config().relocated({}, data_dir)
    engine = make_engine(realm.database_url_for(None))
    RotatingKeyRing(key_store(realm, engine), 3600)
    stores = sql_stores(engine)
    stores.refresh_tokens.save("expired", RefreshToken("f", "app", GRANT, 100))
    engine.dispose()


def test_commands_refuse_a_missing_realm_state(tmp_path: Path) -> None:
    for args in (("keys", "list"), ("keys", "rotate"), ("purge",)):
        result = run(*args, data_dir=tmp_path / "nowhere")
        assert result.returncode == 1 and "no realm state" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_list_rotate_list(tmp_path: Path) -> None:
    _state(tmp_path)
    first = run("keys", "list", data_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("│ signing ") == 1
    rotated = run("keys", "rotate", data_dir=tmp_path)
    assert rotated.returncode == 0, rotated.stderr
    match = re.search(r"new signing key (\S+)", rotated.stdout)
    assert match and "signs from" in rotated.stdout
    listing = run("keys", "list", data_dir=tmp_path).stdout
    assert match.group(1) in listing and "published, not yet signing" in listing
    assert "signing" in listing


def test_rotate_drops_keys_nothing_needs(tmp_path: Path) -> None:
    _state(tmp_path)
    realm = load_config().relocated({}, tmp_path)
    engine = make_engine(realm.database_url_for(None))
    store = key_store(realm, engine)
    ancient = generate_key(now=1000)
    store.add(ancient)
    store.add(generate_key(now=2000))  # retired the ancient key long ago
    engine.dispose()
    assert "expired, not published" in run("keys", "list", data_dir=tmp_path).stdout
    rotated = run("keys", "rotate", data_dir=tmp_path).stdout
    assert f"dropped expired key {ancient.kid}" in rotated
    assert ancient.kid not in run("keys", "list", data_dir=tmp_path).stdout


def test_purge(tmp_path: Path) -> None:
    _state(tmp_path)
    result = run("purge", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"refresh_tokens\s+1 deleted", result.stdout), result.stdout
    assert re.search(r"signing_keys\s+0 deleted", result.stdout)
    again = run("purge", data_dir=tmp_path)
    assert re.search(r"refresh_tokens\s+0 deleted", again.stdout)
