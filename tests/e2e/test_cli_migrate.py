"""`smartrealm migrate` and the schema check of `serve`, as an operator meets them: a realm
database from a release before schema versions, and one written by a later release, stop
`serve --component` with exit code 2 and what to do; `migrate` upgrades in place and
`serve` then runs on the same data."""

from __future__ import annotations

import os
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
from smartrealm.storage.schema import VERSION_TABLE
from tests.e2e.test_cli_keys import _state

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "smartrealm.cli"]
ENV = {**os.environ, "COLUMNS": "200"}


def _sql(data_dir: Path, statement: str) -> None:
    realm = load_config().relocated({}, data_dir)
    engine = make_engine(realm.database_url_for(None))
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()


def _serve(data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    port = free_ports(["as"])["as"]
    process = subprocess.Popen([*CLI, "serve", "--component", "auth_server", "--listen",
                                f"127.0.0.1:{port}", "--data-dir", str(data_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=ENV)
    return process, port


def _refused(data_dir: Path) -> str:
    process, _ = _serve(data_dir)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2, output
    assert "Traceback" not in output
    return " ".join(output.split())


def _ready(data_dir: Path) -> None:
    process, port = _serve(data_dir)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[0]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("never ready")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _migrate(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "migrate", "--data-dir", str(data_dir)], capture_output=True,
                          text=True, timeout=120, env=ENV)


def test_an_unversioned_database_is_refused_until_migrated(tmp_path: Path) -> None:
    _state(tmp_path)  # the AS's database, as a first start leaves it
    _sql(tmp_path, f"DROP TABLE {VERSION_TABLE}")  # as a release before versions left it
    refused = _refused(tmp_path)
    assert "before schema versions: run `smartrealm migrate`" in refused, refused
    done = _migrate(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "auth_server unversioned → version 1" in " ".join(done.stdout.split())
    again = _migrate(tmp_path)
    assert "auth_server already current" in " ".join(again.stdout.split())
    _ready(tmp_path)


def test_a_database_from_a_later_release_is_refused_and_not_downgraded(tmp_path: Path) -> None:
    _state(tmp_path)
    _sql(tmp_path, f"UPDATE {VERSION_TABLE} SET version = 99 WHERE component = 'auth'")
    refused = _refused(tmp_path)
    assert "version 99, newer than this release's version 1" in refused, refused
    done = _migrate(tmp_path)
    assert done.returncode == 2 and "newer" in done.stderr
