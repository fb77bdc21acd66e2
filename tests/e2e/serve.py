"""`smartrealm serve` as an operator runs it: a realm file on free loopback ports, the command
started as a subprocess, waited for until it prints the realm table, stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from smartrealm.realm.config import default_config_text
from smartrealm.realm.runner import AUTH_SERVER, free_ports

CLI = [sys.executable, "-m", "smartrealm.cli"]
DEFAULT_PORTS = {AUTH_SERVER: 8700, "ehr": 8701, "imaging": 8702, "lab": 8703}


def realm_file(tmp_path: Path, *, scheme: str = "http", extra: str = "") -> Path:
    """The default realm on free ports, state under ``tmp_path``; ``scheme`` https turns
    every URL to https, ``extra`` is appended (e.g. a ``[tls]`` table)."""
    ports = free_ports(list(DEFAULT_PORTS))
    text = default_config_text()
    for name, default in DEFAULT_PORTS.items():
        text = text.replace(f"http://127.0.0.1:{default}",
                            f"{scheme}://127.0.0.1:{ports[name]}")
    text = text.replace('data_dir = ".smartrealm"', f'data_dir = "{tmp_path / "state"}"')
    path = tmp_path / "realm.toml"
    path.write_text(text + "\n" + extra)
    return path


@contextmanager
def serving(config: Path, log: Path, timeout: float = 60) -> Iterator[subprocess.Popen[str]]:
    """`smartrealm serve --config FILE`, running until the block ends (then Ctrl-C, which
    must stop it cleanly)."""
    process = subprocess.Popen([*CLI, "serve", "--config", str(config)], stdout=log.open("w"),
                               stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    try:
        _wait_until_running(log, process, timeout)
        yield process
        assert process.poll() is None, "serve exited:\n" + log.read_text()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    assert code == 0, log.read_text()


def _wait_until_running(log: Path, process: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "serve exited during start-up:\n" + log.read_text()
        if "is running" in log.read_text():
            return
        time.sleep(0.2)
    raise AssertionError("serve never reported the realm running:\n" + log.read_text())
