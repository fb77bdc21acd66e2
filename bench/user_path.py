"""The path a new user takes, as subprocesses of the installed CLI, for the benchmarks
(bulk_load.py, search_latency.py): a realm file (the default realm on free loopback ports,
its data in a fresh directory; with ``--backend postgres`` a throwaway PostgreSQL cluster
as tests/pg.py starts it, selected by ``[database] url`` like an operator would), then
``smartrealm generate``, ``smartrealm load``, ``smartrealm client add`` (a Backend Services
client with its own ES384 key) and ``smartrealm serve``. Tokens come from the AS's token
endpoint with ``client_credentials`` (spec §9), as a hospital's backend would get them.
Nothing here reaches into the realm's internals."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLI = str(Path(sys.executable).with_name("smartrealm"))
DEFAULT_REALM = ROOT / "src" / "smartrealm" / "realm" / "default_realm.toml"


@dataclass(frozen=True)
class Realm:
    config: Path
    ports: dict[int, int]        # default port -> the port this run uses
    folder: Path

    def base(self, default_port: int, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[default_port]}{path}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_realm(folder: Path, database_url: str = "") -> Realm:
    """The default realm file, moved to free ports and ``folder/data``."""
    text = DEFAULT_REALM.read_text("utf-8")
    ports = {p: free_port() for p in (8700, 8701, 8702, 8703)}
    for old, new in ports.items():
        text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
    text = text.replace('data_dir = ".smartrealm"', f'data_dir = "{folder / "data"}"')
    text = text.replace('url = ""', f'url = "{database_url}"', 1)
    config = folder / "realm.toml"
    config.write_text(text, "utf-8")
    return Realm(config, ports, folder)


@contextmanager
def database(backend: str) -> Iterator[str]:
    """"" (SQLite files under data_dir, the default) or a throwaway PostgreSQL's URL."""
    if backend == "sqlite":
        yield ""
        return
    from tests.pg import postgres_cluster
    with postgres_cluster() as url:
        yield url


def run(*args: str, realm: Realm) -> tuple[float, str]:
    """One CLI command; (seconds it took, its output). Fails loudly if the command does."""
    started = time.perf_counter()
    done = subprocess.run([CLI, *args, "--config", str(realm.config)], capture_output=True,
                          text=True, check=False, cwd=realm.folder)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"smartrealm {' '.join(args)} failed ({done.returncode}):\n"
                         f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def generate(realm: Realm, patients: int) -> tuple[float, Path, int]:
    """`smartrealm generate`; (seconds, the EHR's NDJSON file, its resources)."""
    out = realm.folder / "generated"
    elapsed, _ = run("generate", "--patients", str(patients), "--out", str(out), realm=realm)
    path = out / "ehr.ndjson"
    with path.open("rb") as stream:
        count = sum(1 for _ in stream)
    return elapsed, path, count


def load(realm: Realm, path: Path) -> float:
    """`smartrealm load --server ehr`: seconds, from start to exit (validation, storing,
    statistics, everything the command does)."""
    elapsed, out = run("load", "--server", "ehr", str(path), realm=realm)
    if "rejected" in out:
        raise SystemExit(f"the load rejected resources:\n{out[-2000:]}")
    return elapsed


def add_backend_client(realm: Realm, scope: str) -> tuple[str, object]:
    """`smartrealm client add` for a private_key_jwt Backend Services client; (client_id,
    its ClientKey)."""
    from smartrealm.client import ClientKey

    key = ClientKey.generate("ES384")
    jwks = realm.folder / "bench-client.jwks.json"
    import json
    jwks.write_text(json.dumps(key.public_jwks()), "utf-8")
    _, out = run("client", "add", "--name", "search benchmark", "--jwks-file", str(jwks),
                 "--grant-type", "client_credentials", "--scope", scope,
                 "--client-id", "search-benchmark", realm=realm)
    found = re.search(r"client_id\s+(\S+)", out)
    if found is None:
        raise SystemExit(f"no client_id in the output of client add:\n{out}")
    return found.group(1), key


@contextmanager
def serving(realm: Realm) -> Iterator[None]:
    """`smartrealm serve` until the block ends (SIGINT, as Ctrl-C)."""
    log = (realm.folder / "serve.log").open("w")
    process = subprocess.Popen([CLI, "serve", "--config", str(realm.config)], stdout=log,
                               stderr=subprocess.STDOUT, cwd=realm.folder)
    try:
        _wait(realm.base(8700, "/.well-known/smart-configuration"), process)
        _wait(realm.base(8701, "/fhir/metadata"), process)
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 600  # start-up may gather statistics of a large store
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"smartrealm serve exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("smartrealm serve did not answer within 10 minutes")


def system_token(realm: Realm, client_id: str, key: object, scope: str) -> str:
    """A client_credentials token for the EHR from the AS's token endpoint (spec §9)."""
    import asyncio

    from smartrealm.client import ClientKey, client_credentials, discover

    assert isinstance(key, ClientKey)
    ehr = realm.base(8701, "/fhir")

    async def fetch() -> str:
        async with httpx.AsyncClient(timeout=30) as http:
            config = await discover(http, ehr)
            tokens = await client_credentials(http, config.token_endpoint,
                                              client_id=client_id, key=key, scope=scope,
                                              resources=[ehr])
            return tokens.access_token

    return asyncio.run(fetch())


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cleanup(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
