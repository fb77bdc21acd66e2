"""The acceptance suite's realm: real processes on loopback, started once per storage backend.

The realm is the default one with three changes, so that every check of spec §12.1/§12.6 and
every multi-server case has something real to run against:

* the imaging server checks tokens by **introspection** (``token_check``), so a revoked
  access token is refused there (g10 token revocation); the EHR and the lab check signatures;
* a fourth server, ``archive`` (profile ``empty``), has no record of any patient (the
  "patient missing on one server" case);
* the signing key is **rotated** right after start-up with `smartrealm keys rotate`, so the
  JWKS holds two RSA keys (Inferno's ``smart_openid_token_header``: ``kid`` required and
  matching when there is more than one key).

The fixture is parametrized over ``sqlite`` (one file per component) and ``postgres`` (a
fresh database on the session's throwaway cluster, one schema per component): the whole
suite runs against both, the AS and every FHIR server really using that storage.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from smartrealm.oauth.key_rotation import RELOAD_INTERVAL
from smartrealm.realm.config import RealmConfig, default_config_text, load_config
from smartrealm.realm.runner import AUTH_SERVER, Launch, free_ports, running_realm
from smartrealm.storage import make_engine

ARCHIVE = '''
[[resource_servers]]
id = "archive"
name = "SmartRealm Archive"
base_url = "http://127.0.0.1:8704/fhir"
fhir_version = "4.0.1"
mode = "server"
profile = "empty"

'''
CLI = [sys.executable, "-m", "smartrealm.cli"]


@dataclass(frozen=True)
class Realm:
    """The running realm under test, as Inferno would be configured for it."""

    config: RealmConfig
    config_path: Path
    data_dir: Path
    backend: str
    rotated_at: float = 0.0  # when `keys rotate` ran (the new key signs PREPUBLISH s later)
    new_kid: str = ""

    def base(self, server_id: str) -> str:
        return self.config.server(server_id).base_url

    @property
    def issuer(self) -> str:
        return self.config.auth_server.issuer

    @property
    def token_endpoint(self) -> str:
        return self.config.auth_server.token_endpoint

    @property
    def authorization_endpoint(self) -> str:
        return self.config.auth_server.authorization_endpoint

    def cli(self, *args: str) -> str:
        result = subprocess.run([*CLI, *args, "--config", str(self.config_path),
                                 "--data-dir", str(self.data_dir)], capture_output=True,
                                text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout


def realm_text(database_url: str) -> str:
    text_ = default_config_text()
    text_ = text_.replace('profile = "imaging"\n',
                          'profile = "imaging"\ntoken_check = "introspection"\n', 1)
    text_ = text_.replace("[[users]]", ARCHIVE + "[[users]]", 1)
    head, tail = text_.split("[database]\n", 1)
    assert '\nurl = ""\n' in tail
    return head + "[database]\n" + tail.replace('\nurl = ""\n', f'\nurl = "{database_url}"\n', 1)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (as the ``pg_url`` fixture makes), for one realm."""
    name = "conformance_" + uuid.uuid4().hex[:12]
    admin = make_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database_for(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield ""
        return
    with fresh_database(str(request.getfixturevalue("pg_server_url"))) as url:
        yield url


def wait_for_two_keys(realm: Realm) -> None:
    """The running AS publishes a rotated key within RELOAD_INTERVAL, without a restart."""
    deadline = time.monotonic() + RELOAD_INTERVAL + 10
    with httpx.Client(timeout=10) as http:
        while time.monotonic() < deadline:
            if len(http.get(realm.config.auth_server.jwks_uri).json()["keys"]) >= 2:
                return
            time.sleep(0.2)
    raise AssertionError("the rotated key was not published")


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def realm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Realm]:
    tmp = tmp_path_factory.mktemp(f"conformance-{request.param}")
    with database_for(request) as database_url:
        path = tmp / "realm.toml"
        path.write_text(realm_text(database_url))
        base = load_config(path)
        assert base.database_url == database_url
        ports = free_ports([AUTH_SERVER, *(rs.id for rs in base.resource_servers)])
        data_dir = tmp / "state"
        config = base.relocated(ports, data_dir)
        with running_realm(config, Launch(path, ports, data_dir)) as running:
            live = Realm(config, path, data_dir, str(request.param))
            rotated_at = time.time()
            out = live.cli("keys", "rotate")  # published within RELOAD_INTERVAL
            new_kid = out.split("new signing key ")[1].split()[0]
            yield replace(live, rotated_at=rotated_at, new_kid=new_kid)
            assert not running.exited(), f"a component died: {running.exited()}"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15.0) as client:
        yield client
