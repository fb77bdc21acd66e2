"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary directory, started on a
free loopback port, removed afterwards. Runs as the ``postgres`` user when the tests run as
root (initdb refuses root)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")


def _run(cmd: list[str], as_postgres: bool) -> None:
    if as_postgres:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh database on a fresh cluster."""
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="smartrealm-pg-"))
    data = root / "data"
    port = _free_port()
    if as_postgres:
        shutil.chown(root, "postgres")
        root.chmod(0o755)
    _run([_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync",
          "-E", "UTF8"], as_postgres)
    _run([_bin("pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
          f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
          "-c full_page_writes=off -c synchronous_commit=off", "start"], as_postgres)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        _run([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], as_postgres)
        shutil.rmtree(root, ignore_errors=True)
