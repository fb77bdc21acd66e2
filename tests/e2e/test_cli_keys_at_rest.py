"""Signing keys sealed at rest, as an operator runs it: `smartrealm keys encrypt` converts an
existing store; the AS then starts only with the same key-encryption key — a missing or
wrong one, or a store left in clear under a key, stops `serve --component auth_server`
with exit code 2 and a message that says what to do."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from smartrealm.realm.config import load_config
from smartrealm.realm.runner import free_ports
from smartrealm.storage import make_engine
from tests.e2e.test_cli_keys import _state

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "smartrealm.cli"]


def _kek() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _env(kek: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTREALM_KEY_ENC")}
    if kek is not None:
        env["SMARTREALM_KEY_ENCRYPTION_KEY"] = kek
    return {**env, "COLUMNS": "200"}


def _cli(*args: str, data_dir: Path, kek: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args, "--data-dir", str(data_dir)], capture_output=True,
                          text=True, timeout=60, env=_env(kek))


def _start(data_dir: Path, kek: str | None) -> tuple[subprocess.Popen[str], int]:
    port = free_ports(["auth"])["auth"]
    process = subprocess.Popen(
        [*CLI, "serve", "--component", "auth_server", "--listen", f"127.0.0.1:{port}",
         "--data-dir", str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=_env(kek))
    return process, port


def _refused(data_dir: Path, kek: str | None) -> str:
    process, _ = _start(data_dir, kek)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2, output
    assert "Traceback" not in output
    return output


def _serves(data_dir: Path, kek: str | None) -> None:
    process, port = _start(data_dir, kek)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[0]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    jwks = httpx.get(f"http://127.0.0.1:{port}/jwks").json()
                    assert jwks["keys"] and "d" not in jwks["keys"][0]
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("the AS never became ready")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_encrypt_then_serve_only_with_the_same_key(tmp_path: Path) -> None:
    _state(tmp_path)
    kek = _kek()
    assert "keys encrypt" in _refused(tmp_path, kek)  # in clear, under a key: refused

    no_key = _cli("keys", "encrypt", data_dir=tmp_path, kek=None)
    assert no_key.returncode == 2 and "SMARTREALM_KEY_ENCRYPTION_KEY" in no_key.stderr
    done = _cli("keys", "encrypt", data_dir=tmp_path, kek=kek)
    assert done.returncode == 0, done.stderr
    assert "sealed 1 stored key(s)" in done.stdout  # the signing key of the first start

    stored = _column(tmp_path, "SELECT key_json FROM as_signing_keys")
    assert stored and all(v.startswith("sealed:v1:") and '"d"' not in v for v in stored)

    assert "are encrypted" in _refused(tmp_path, None)
    assert "wrong key-encryption key" in _refused(tmp_path, _kek())
    bad = _refused(tmp_path, "not-a-key")
    assert "SMARTREALM_KEY_ENCRYPTION_KEY" in bad and "32 bytes" in bad
    _serves(tmp_path, kek)
    secrets_ = _column(tmp_path, "SELECT key_b64 FROM as_secret_keys")
    assert secrets_ and all(v.startswith("sealed:v1:") for v in secrets_)  # created sealed
    listing = _cli("keys", "list", data_dir=tmp_path, kek=kek)
    assert listing.returncode == 0 and "signing" in listing.stdout
    locked = _cli("keys", "list", data_dir=tmp_path, kek=None)
    assert locked.returncode == 2 and "encrypted" in locked.stderr


def _column(data_dir: Path, query: str) -> list[str]:
    realm = load_config().relocated({}, data_dir)
    engine = make_engine(realm.database_url_for(None))
    with engine.connect() as conn:
        values = [str(r[0]) for r in conn.execute(text(query))]
    engine.dispose()
    return values
