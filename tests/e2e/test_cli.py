"""The two user-facing commands, run as a user runs them: `smartrealm demo` and
`smartrealm serve` (real processes, real signals, state across restarts)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from smartrealm.realm.config import default_config_text
from smartrealm.realm.runner import AUTH_SERVER, free_ports

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "smartrealm.cli"]


def test_demo_plays_the_whole_flow_and_exits_zero() -> None:
    result = subprocess.run([*CLI, "demo"], capture_output=True, text=True, timeout=180,
                            env={**os.environ, "COLUMNS": "200"})
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "yes: same AS endpoints, both advertise auth-multi-aud-token" in out
    assert "resource = " in out and "patient id on" in out
    assert "img0012" in out and "p0012" in out
    assert "ImagingStudy:" in out and "Observation:" in out
    assert "401" in out
    assert "every step succeeded" in out


def _config_file(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    ports = free_ports([AUTH_SERVER, "ehr", "imaging", "lab"])
    text = default_config_text()
    for name, default in ((AUTH_SERVER, 8700), ("ehr", 8701), ("imaging", 8702), ("lab", 8703)):
        text = text.replace(f"127.0.0.1:{default}", f"127.0.0.1:{ports[name]}")
    text = text.replace('data_dir = ".smartrealm"', f'data_dir = "{tmp_path / "state"}"')
    path = tmp_path / "realm.toml"
    path.write_text(text)
    return path, ports


def _start(config: Path, log: Path, ignore_sigint: bool = False) -> subprocess.Popen[str]:
    def as_background_job() -> None:
        # What `cmd &` in a non-interactive shell (nohup, CI runners) does to a child.
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen([*CLI, "serve", "--config", str(config)], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"},
                            preexec_fn=as_background_job if ignore_sigint else None)


def _wait_until_running(log: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    """`serve` prints the realm table once every component answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "serve exited during start-up:\n" + log.read_text()
        if "is running" in log.read_text():
            return
        time.sleep(0.2)
    raise AssertionError("serve never reported the realm running:\n" + log.read_text())


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=30)


def test_serve_keeps_state_across_restarts_and_stops_cleanly(tmp_path: Path) -> None:
    config, ports = _config_file(tmp_path)
    issuer = f"http://127.0.0.1:{ports[AUTH_SERVER]}"
    lab = f"http://127.0.0.1:{ports['lab']}/fhir"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    process = _start(config, first_log)
    try:
        _wait_until_running(first_log, process)
        kids = [k["kid"] for k in httpx.get(f"{issuer}/jwks").json()["keys"]]
        client = httpx.post(f"{issuer}/register", json={
            "client_name": "restart test", "redirect_uris": ["http://127.0.0.1:9/cb"],
            "token_endpoint_auth_method": "none"}).json()
    finally:
        assert _stop(process) == 0
    log = first_log.read_text()
    assert "clinician-demo" in log and "stopped (interrupted)" in log
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{issuer}/jwks", timeout=2)
    process = _start(config, second_log)
    try:
        _wait_until_running(second_log, process)
        assert [k["kid"] for k in httpx.get(f"{issuer}/jwks").json()["keys"]] == kids
        # The registered client survived: its authorize request reaches the login page.
        response = httpx.get(f"{issuer}/authorize", params={
            "response_type": "code", "client_id": client["client_id"],
            "redirect_uri": "http://127.0.0.1:9/cb", "scope": "launch/patient patient/*.rs",
            "state": "s" * 22, "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256", "aud": lab})
        assert response.status_code == 303
        assert "/interaction/login" in response.headers["location"]
    finally:
        assert _stop(process) == 0


def test_serve_started_as_a_background_job_still_stops_on_sigint(tmp_path: Path) -> None:
    config, _ports = _config_file(tmp_path)
    log = tmp_path / "serve.log"
    process = _start(config, log, ignore_sigint=True)
    _wait_until_running(log, process)
    assert _stop(process) == 0
    assert "stopped (interrupted)" in log.read_text()


def test_serve_with_a_bad_config_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "realm.toml"
    path.write_text(default_config_text().replace('base_url = "http://127.0.0.1:8702/fhir"',
                                                  'base_url = "imaging"'))
    result = subprocess.run([*CLI, "serve", "--config", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "resource_servers[1].base_url" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_serve_refuses_a_busy_port(tmp_path: Path) -> None:
    config, ports = _config_file(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports["imaging"]))
        busy.listen()
        result = subprocess.run([*CLI, "serve", "--config", str(config)], capture_output=True,
                                text=True, timeout=60)
    assert result.returncode == 1
    assert "imaging: port" in result.stderr and "in use" in result.stderr


def test_a_sigterm_to_serve_lets_every_component_drain_before_it_stops(tmp_path: Path) -> None:
    """`serve` passes SIGTERM on and waits for the drain ([deployment] drain_seconds, here
    longer than the usual 10 s grace): the components turn not-ready, keep serving, and
    stop by themselves rather than being killed at the end of the grace."""
    config, ports = _config_file(tmp_path)
    config.write_text(config.read_text() + "\n[deployment]\ndrain_seconds = 12\n")
    issuer = f"http://127.0.0.1:{ports[AUTH_SERVER]}"
    log = tmp_path / "serve.log"
    process = _start(config, log)
    try:
        _wait_until_running(log, process)
        process.send_signal(signal.SIGTERM)
        time.sleep(2)
        assert httpx.get(f"{issuer}/readyz").status_code == 503  # draining
        assert httpx.get(f"{issuer}/jwks").status_code == 200  # still serving
        time.sleep(9)
        assert httpx.get(f"{issuer}/jwks").status_code == 200  # past the old 10 s grace
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    child_logs = "\n".join(p.read_text() for p in (tmp_path / "state" / "logs").glob("*.log"))
    assert "Traceback" not in child_logs and "stopped (interrupted)" in log.read_text()
