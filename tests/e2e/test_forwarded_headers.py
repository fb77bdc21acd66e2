"""Who may choose the address the AS sees (`[deployment] trusted_proxies`): the
client-authentication lockout counts failures per client_id and caller address. Without
trusted proxies, an X-Forwarded-For header changes nothing — a caller cannot step out of its
own lockout by claiming another address; with the balancer's address trusted, the forwarded
address is the caller's, so one address locked out does not lock out another."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from smartrealm.realm.runner import free_ports
from tests.e2e.serve import realm_file

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "smartrealm.cli"]
ENV = {**os.environ, "COLUMNS": "200"}


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _outcome(token_url: str, client_id: str, secret: str, forwarded: str) -> tuple[int, str]:
    response = httpx.post(token_url, data={"grant_type": "authorization_code",
                                           "code": "no-such-code",
                                           "redirect_uri": "http://127.0.0.1:9/cb"},
                          headers={"Authorization": _basic(client_id, secret),
                                   "X-Forwarded-For": forwarded})
    return response.status_code, response.json()["error"]


def _run(tmp_path: Path, trusted: str) -> tuple[int, str]:
    """Lock the client out from 10.0.0.1, then present its right secret from 10.0.0.2."""
    config = realm_file(tmp_path, extra=f"[deployment]\ntrusted_proxies = {trusted}\n")
    added = subprocess.run([*CLI, "client", "add", "--name", "Confidential", "--secret",
                            "--redirect-uri", "http://127.0.0.1:9/cb", "--config", str(config)],
                           capture_output=True, text=True, env=ENV, timeout=60)
    assert added.returncode == 0, added.stderr
    client_id = re.search(r"client_id\s+(\S+)", added.stdout).group(1)  # type: ignore[union-attr]
    secret = re.search(r"client_secret\s+(\S+)", added.stdout).group(1)  # type: ignore[union-attr]
    port = free_ports(["as"])["as"]
    process = subprocess.Popen([*CLI, "serve", "--config", str(config), "--component",
                                "auth_server", "--listen", f"127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=ENV)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "never ready"
            time.sleep(0.2)
        token_url = f"{base}/token"
        failures = [_outcome(token_url, client_id, "wrong", "10.0.0.1") for _ in range(12)]
        assert failures[0] == (401, "invalid_client") and failures[-1] == (429, "invalid_client")
        assert _outcome(token_url, client_id, secret, "10.0.0.1")[0] == 429  # locked
        return _outcome(token_url, client_id, secret, "10.0.0.2")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_a_forwarded_address_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    assert _run(tmp_path, "[]") == (429, "invalid_client")  # still the same caller: locked


def test_a_forwarded_address_from_a_trusted_proxy_is_the_caller(tmp_path: Path) -> None:
    # Another caller behind the balancer: authenticated (the code is bogus: invalid_grant).
    assert _run(tmp_path, '["127.0.0.1/32"]') == (400, "invalid_grant")
