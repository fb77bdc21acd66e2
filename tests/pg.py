"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary directory, started on a
free loopback port, removed afterwards. Runs as the ``postgres`` user when the tests run as
root (initdb refuses root)."""

from __future__ import annotations

import contextlib
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


class Cluster:
    """A throwaway cluster that a test may stop and start again (a database outage)."""

    def __init__(self) -> None:
        self.as_postgres = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="smartrealm-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
            self.root.chmod(0o755)
        _run([_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
              "--no-sync", "-E", "UTF8"], self.as_postgres)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        _run([_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o",
              f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
              "-c full_page_writes=off -c synchronous_commit=off", "start"], self.as_postgres)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        _run([_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "stop"], self.as_postgres)

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def controllable_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh database on a fresh cluster."""
    with controllable_cluster() as cluster:
        yield cluster.url
