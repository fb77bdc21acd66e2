"""`smartrealm serve --component NAME`: one component per process, as a container behind a
load balancer runs it (cli/serve.py, serving/health.py). Real subprocesses, real signals.

* The public URL is not the listen address: an ingress serves ``https://as.example.org``
  while the process listens on a loopback port (``--listen`` or the realm file's ``listen``
  key), without ``[tls]``; discovery and the CapabilityStatement keep the public URLs, and
  ``/healthz`` and ``/readyz`` answer at the listener's root whatever path the URL has.
* The operator's mistakes end with exit code 2 and a message saying what is wrong.
* SIGTERM with ``[deployment] drain_seconds``: /readyz turns 503 at once so the load balancer
  takes the instance out of rotation, everything else keeps answering for the drain window,
  then the listener closes, a request still in flight is answered in full, and the process
  exits by itself. Without a drain it exits promptly.
  Only the one request a client may have on the wire at the very instant the listener
  closes can be lost (LOST_AT_CLOSE): no server avoids that race, which is why it drains.
  A second SIGTERM cuts the drain short.
* ``--workers N`` on PostgreSQL: N worker processes share the listener, each answers
  requests, each drains on SIGTERM, and the whole process tree ends.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from smartrealm.core.defaults import OUTAGE_RETRY_AFTER
from smartrealm.realm.runner import free_ports
from tests.e2e.serve import CLI, realm_file

pytestmark = pytest.mark.e2e

STARTUP = 60.0  # seconds; two loaded cores build the sample data slowly
AS_PUBLIC = "https://as.example.org"
EHR_PUBLIC = "https://ehr.example.org/fhir"
ENV = {**os.environ, "COLUMNS": "200"}  # no wrapped error lines


# --------------------------------------------------------------------------- realm files


def _replace(text: str, pattern: str, new: str) -> str:
    changed, count = re.subn(pattern, new, text, count=1)
    assert count == 1, f"{pattern!r} not in the realm file"
    return changed


def _realm(tmp_path: Path, *, public_urls: bool = False, extra: str = "",
           database_url: str = "", ehr_listen: str = "") -> Path:
    """The default realm on free loopback ports (tests/e2e/serve.py), state in ``tmp_path``.

    ``public_urls``: the AS and the EHR are reached through an ingress at https URLs (the
    demo app's redirect URI follows the issuer); imaging and lab stay on loopback.
    ``database_url``: PostgreSQL for every component. ``ehr_listen``: the EHR's ``listen``
    key. ``extra`` is appended (a ``[deployment]`` table)."""
    path = realm_file(tmp_path, extra=extra)
    text = path.read_text()
    if public_urls:
        text = _replace(text, r'issuer = "http://127\.0\.0\.1:\d+"', f'issuer = "{AS_PUBLIC}"')
        text = _replace(text, r'"http://127\.0\.0\.1:\d+/demo-app/callback"',
                        f'"{AS_PUBLIC}/demo-app/callback"')
        text = _replace(text, r'base_url = "http://127\.0\.0\.1:\d+/fhir"\n(?=fhir_version'
                        r' = "4\.0\.1"\nmode = "server"\nprofile = "ehr")',
                        f'base_url = "{EHR_PUBLIC}"\n')
    if ehr_listen:
        text = _replace(text, r'profile = "ehr"\n',
                        f'profile = "ehr"\nlisten = "{ehr_listen}"\n')
    if database_url:
        text = _replace(text, r'(?m)^url = ""$', f'url = "{database_url}"')
    assert not re.search(r"(?m)^\[tls\]", text)  # TLS ends at the ingress
    path.write_text(text)
    return path


def _free_listen() -> tuple[str, str]:
    """A free loopback ``HOST:PORT`` and the http base URL that reaches it."""
    port = free_ports(["listener"])["listener"]
    return f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------- processes


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base: str  # the listener, http://127.0.0.1:PORT
    log: Path

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def _serve(config: Path, base: str, log: Path, *args: str) -> Iterator[Served]:
    """`smartrealm serve ARGS --config FILE` in its own session, ready (GET /readyz 200 at
    ``base``) when the block starts. Whatever is left of it afterwards gets a Ctrl-C (SIGINT
    to the whole process group: uvicorn stops at once, drain or not), then SIGKILL."""
    process = subprocess.Popen([*CLI, "serve", *args, "--config", str(config)],
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, env=ENV,
                               start_new_session=True)
    served = Served(process, base, log)
    try:
        _wait_ready(served)
        yield served
    finally:
        for stop in (signal.SIGINT, signal.SIGKILL):
            if _group(process.pid):
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, stop)
                with suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
        process.wait(timeout=30)


def _wait_ready(served: Served) -> None:
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        assert served.process.poll() is None, "serve exited during start-up:\n" + served.output()
        try:
            if httpx.get(served.base + "/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{served.base}/readyz never answered 200:\n{served.output()}")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, process group) of a live process, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)", which may hold spaces
    if fields[0] == "Z":
        return None  # a zombie serves nothing; its parent has yet to reap it
    return int(fields[1]), int(fields[2])


def _processes() -> dict[int, tuple[int, int]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat
    return found


def _group(pgid: int) -> list[int]:
    """Live processes of a process group (serve and everything it started)."""
    return [pid for pid, (_, group) in _processes().items() if group == pgid]


def _descendants(root: int) -> list[int]:
    table = _processes()
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, (ppid, _) in table.items() if ppid in frontier]
        found += children
        frontier = children
    return found


def _socket_inodes(pid: int) -> set[str]:
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return set()
    inodes = set()
    for fd in fds:
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _tcp_inodes(port: int, state: str) -> set[str]:
    """Inodes of the IPv4 sockets bound locally to ``port`` in ``state`` (0A = LISTEN,
    01 = ESTABLISHED), from /proc/net/tcp."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == state:
            inodes.add(fields[9])
    return inodes


def _workers(served: Served) -> list[int]:
    """Processes under `serve` that hold its listening socket: the uvicorn workers (the
    supervisor binds the socket itself; multiprocessing's resource tracker holds none)."""
    listening = _tcp_inodes(served.port, "0A")
    assert listening, f"nothing listens on {served.base}"
    return [pid for pid in _descendants(served.process.pid) if _socket_inodes(pid) & listening]


def _wait_for_workers(served: Served, count: int) -> list[int]:
    """The worker pids, once exactly ``count`` hold the listener (the supervisor spawns
    them one after the other)."""
    deadline = time.monotonic() + STARTUP
    while len(_workers(served)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = _workers(served)
    assert len(workers) == count, (workers, _descendants(served.process.pid))
    assert served.process.pid not in workers
    return workers


def _exits_within(served: Served, seconds: float) -> float:
    """Wait for `serve` to exit by itself; how long it took. Uvicorn re-raises the SIGTERM it
    handled once it has shut down gracefully, so the exit status is that signal (or 0)."""
    start = time.monotonic()
    try:
        code = served.process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {seconds:g}s after SIGTERM:\n"
                             + served.output()) from None
    assert code in (0, -signal.SIGTERM), f"exit status {code}:\n{served.output()}"
    return time.monotonic() - start


# --------------------------------------------------------------------------- the public URL


def test_auth_server_listens_apart_from_its_public_https_issuer(tmp_path: Path) -> None:
    config = _realm(tmp_path, public_urls=True)
    listen, base = _free_listen()
    with _serve(config, base, tmp_path / "as.log",
                "--component", "auth_server", "--listen", listen) as served:
        health = httpx.get(base + "/healthz", timeout=15)
        assert health.status_code == 200
        assert health.headers["content-type"] == "application/json"
        assert health.json() == {"status": "ok"}
        ready = httpx.get(base + "/readyz", timeout=15)
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        discovery = httpx.get(base + "/.well-known/openid-configuration", timeout=15)
        assert discovery.status_code == 200
        assert discovery.json()["issuer"] == AS_PUBLIC
        assert discovery.json()["token_endpoint"] == AS_PUBLIC + "/token"
        smart = httpx.get(base + "/.well-known/smart-configuration", timeout=15)
        assert smart.status_code == 200
        assert smart.json()["issuer"] == AS_PUBLIC
        assert served.process.poll() is None, served.output()


def test_fhir_server_listens_where_its_listen_key_says(tmp_path: Path) -> None:
    """The realm file's ``listen`` key instead of --listen; the FHIR base has a path
    (/fhir), the health endpoints stay at the root."""
    listen, base = _free_listen()
    config = _realm(tmp_path, public_urls=True, ehr_listen=listen)
    with _serve(config, base, tmp_path / "ehr.log", "--component", "ehr") as served:
        assert httpx.get(base + "/healthz", timeout=15).json() == {"status": "ok"}
        ready = httpx.get(base + "/readyz", timeout=15)
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        metadata = httpx.get(base + "/fhir/metadata", timeout=15)
        assert metadata.status_code == 200, metadata.text
        capability = metadata.json()
        assert capability["resourceType"] == "CapabilityStatement"
        assert EHR_PUBLIC in metadata.text
        assert "127.0.0.1:" + listen.rsplit(":", 1)[1] not in metadata.text
        assert served.process.poll() is None, served.output()


def test_fhir_server_with_listen_option(tmp_path: Path) -> None:
    config = _realm(tmp_path, public_urls=True)
    listen, base = _free_listen()
    with _serve(config, base, tmp_path / "ehr.log", "--component", "ehr", "--listen", listen):
        ready = httpx.get(base + "/readyz", timeout=15)
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        metadata = httpx.get(base + "/fhir/metadata", timeout=15)
        assert metadata.status_code == 200, metadata.text
        assert metadata.json()["resourceType"] == "CapabilityStatement"


# --------------------------------------------------------------------------- CLI errors


def _serve_fails(config: Path, *args: str) -> str:
    """Run `serve ARGS`, which must refuse with exit code 2 before serving; its stderr."""
    result = subprocess.run([*CLI, "serve", *args, "--config", str(config)],
                            capture_output=True, text=True, timeout=60, env=ENV)
    assert result.returncode == 2, result.stdout + result.stderr
    return " ".join(result.stderr.split())


@pytest.mark.parametrize(("args", "message"), [
    (("--component", "pharmacy"),
     "unknown component 'pharmacy' (expected one of: auth_server, ehr, imaging, lab)"),
    (("--listen", "127.0.0.1:8080"),
     "--listen and --workers apply to one component: add --component NAME"),
    (("--workers", "2"),
     "--listen and --workers apply to one component: add --component NAME"),
    (("--component", "ehr", "--listen", "nonsense"),
     "--listen: must be HOST:PORT with a port from 1 to 65535 (got 'nonsense')"),
    (("--component", "auth_server", "--listen", "127.0.0.1:70000"),
     "--listen: must be HOST:PORT with a port from 1 to 65535 (got '127.0.0.1:70000')"),
    (("--component", "ehr", "--workers", "2"),
     "--workers above 1 needs PostgreSQL (database.url in the realm file)"),
    (("--component", "auth_server", "--workers", "2", "--listen", "127.0.0.1:8080"),
     "--workers above 1 needs PostgreSQL (database.url in the realm file)"),
])
def test_serve_refuses_with_exit_code_2(tmp_path: Path, args: tuple[str, ...],
                                        message: str) -> None:
    stderr = _serve_fails(realm_file(tmp_path), *args)
    assert message in stderr
    assert "Traceback" not in stderr


# --------------------------------------------------------------------------- SIGTERM


@dataclass(frozen=True)
class Sent:
    client: int
    start: float
    end: float
    outcome: int | str  # a status code (200 = a whole, parsed document) or an error class


@dataclass
class Load:
    """Clients asking the listener for the discovery document in a loop until stopped, each
    on its own keep-alive connection, as a load balancer's traffic does."""

    base: str
    sent: list[Sent] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, client_number: int) -> None:
        with httpx.Client(base_url=self.base, timeout=15) as client:
            while not self.stop.is_set():
                start = time.monotonic()
                outcome: int | str
                try:
                    response = client.get("/.well-known/openid-configuration")
                    outcome = response.status_code
                    if outcome == 200:
                        response.json()  # complete: the whole document parses
                except httpx.ConnectError:
                    outcome = "ConnectError"
                    time.sleep(0.05)
                except (httpx.TransportError, ValueError) as exc:
                    outcome = type(exc).__name__
                self.sent.append(Sent(client_number, start, time.monotonic(), outcome))


@contextmanager
def _load(base: str, clients: int) -> Iterator[Load]:
    load = Load(base)
    threads = [threading.Thread(target=load.run, args=(n,), daemon=True)
               for n in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield load
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)


def _trickled_token_request(base: str, chunks: int, pause: float,
                            result: dict[str, Any]) -> None:
    """A POST /token whose form body arrives over ``chunks * pause`` seconds: a request in
    flight. The AS answers it (401: no client authentication) once the body is complete."""
    def body() -> Iterator[bytes]:
        yield b"grant_type=authorization_code&code=x"
        for i in range(chunks):
            time.sleep(pause)
            yield f"&pad{i}=1".encode()
        result["body_sent"] = time.monotonic()

    try:
        response = httpx.post(base + "/token", content=body(), timeout=30,
                              headers={"content-type": "application/x-www-form-urlencoded"})
        result["response"] = (response.status_code, response.json())
    except (httpx.HTTPError, ValueError) as exc:
        result["response"] = repr(exc)


def _watch_readiness(served: Served, since: float, until: float
                     ) -> list[tuple[float, int | str, dict[str, Any], str]]:
    """GET /readyz every 0.2 s until `serve` exits (or ``until``): (seconds after ``since``,
    status or error class, body, Retry-After)."""
    answers: list[tuple[float, int | str, dict[str, Any], str]] = []
    while served.process.poll() is None and time.monotonic() < until:
        asked = time.monotonic() - since
        try:
            ready = httpx.get(served.base + "/readyz", timeout=5)
            answers.append((asked, ready.status_code, ready.json(),
                            ready.headers.get("retry-after", "")))
        except httpx.TransportError as exc:
            answers.append((asked, type(exc).__name__, {}, ""))
        time.sleep(0.2)
    return answers


DRAINING = {"status": "not ready", "problems": {"shutdown": "draining"}}
_DRAINING_BODY = json.dumps(DRAINING).encode()
_READY_BODY = json.dumps({"status": "ready"}).encode()
# What a client may see for the one request it had on the wire at the very moment the
# listener closes: the server closed that idle keep-alive connection (or reset a connection
# still in the accept queue) before reading the request. No server can avoid this race;
# the drain exists so that the load balancer has stopped sending by then.
LOST_AT_CLOSE = {"RemoteProtocolError", "ReadError", "WriteError"}


def test_sigterm_drains_then_exits(tmp_path: Path) -> None:
    drain, clients = 3, 4
    config = _realm(tmp_path, extra=f"[deployment]\ndrain_seconds = {drain}\n")
    listen, base = _free_listen()
    slow: dict[str, Any] = {}
    with _serve(config, base, tmp_path / "as.log",
                "--component", "auth_server", "--listen", listen) as served, \
            _load(base, clients) as load:
        time.sleep(1)
        sigterm = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        # Starts inside the drain window; its body is still arriving when the listener closes.
        in_flight = threading.Timer(drain - 1.0, _trickled_token_request,
                                    (base, 6, 0.5, slow))
        in_flight.start()
        readiness = _watch_readiness(served, sigterm, sigterm + 15)
        _exits_within(served, max(0.0, sigterm + 15 - time.monotonic()))
        exited = time.monotonic() - sigterm
        in_flight.join(timeout=30)
        time.sleep(0.3)  # the clients meet the closed listener
    close = sigterm + drain  # uvicorn's shutdown starts no earlier than this

    # /readyz turns 503 at once (within a second) and stays so for the whole window.
    not_ready = [at for at, status, _, _ in readiness if status == 503]
    assert not_ready and not_ready[0] < 1.0, readiness
    for at, status, body, retry_after in readiness:
        if not_ready[0] <= at < drain - 0.5:
            assert (status, body, retry_after) == (503, DRAINING, str(OUTAGE_RETRY_AFTER))
    # Everything else kept answering, in full, while /readyz said 503.
    before_close = [s for s in load.sent if s.start < close - 0.5]
    assert [s for s in before_close if s.outcome != 200] == []
    while_draining = [s for s in before_close if s.start > sigterm + not_ready[0]]
    assert len(while_draining) >= 20, f"{len(while_draining)} answers while draining"
    # The listener closed at the end of the window, not before, and the process left by
    # itself soon after.
    assert drain - 0.2 <= exited < 15, f"exited {exited:.1f}s after SIGTERM"
    at_close = [s for s in load.sent if s.start >= close - 0.5]
    assert any(s.outcome == "ConnectError" for s in at_close), "the listener never closed"
    lost = [s for s in at_close if s.outcome not in (200, "ConnectError")]
    assert {s.outcome for s in lost} <= LOST_AT_CLOSE, lost
    for client in range(clients):
        assert len([s for s in lost if s.client == client]) <= 1, lost
    # The request in flight when the listener closed was answered in full.
    refused = min(s.start for s in at_close if s.outcome == "ConnectError")
    assert slow.get("response") == (401, {"error": "invalid_client", "error_description":
                                          "client authentication is required"}), slow
    assert slow["body_sent"] > refused, "the slow request was not in flight at the close"
    assert "Traceback" not in served.output(), served.output()


def test_second_sigterm_cuts_the_drain_short(tmp_path: Path) -> None:
    config = _realm(tmp_path, extra="[deployment]\ndrain_seconds = 120\n")
    listen, base = _free_listen()
    with _serve(config, base, tmp_path / "as.log",
                "--component", "auth_server", "--listen", listen) as served:
        served.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while httpx.get(base + "/readyz", timeout=5).status_code != 503:
            assert time.monotonic() < deadline, "/readyz never turned 503"
            time.sleep(0.1)
        assert httpx.get(base + "/readyz", timeout=5).json() == DRAINING
        served.process.send_signal(signal.SIGTERM)
        took = _exits_within(served, 15)
    assert took < 10, f"{took:.1f}s after the second SIGTERM"


def test_sigterm_without_drain_exits_promptly(tmp_path: Path) -> None:
    listen, base = _free_listen()
    with _serve(realm_file(tmp_path), base, tmp_path / "as.log",
                "--component", "auth_server", "--listen", listen) as served:
        assert httpx.get(base + "/.well-known/openid-configuration", timeout=15).status_code \
            == 200
        served.process.send_signal(signal.SIGTERM)
        took = _exits_within(served, 10)
    assert took < 5, f"{took:.1f}s to stop without a drain"
    with pytest.raises(httpx.ConnectError):
        httpx.get(base + "/healthz", timeout=5)
    assert "Traceback" not in served.output(), served.output()


# --------------------------------------------------------------------------- workers


def _connection_inode(port: int, client_port: int) -> str:
    """The inode of the server's side of the loopback connection from ``client_port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (fields[1].endswith(f":{port:04X}") and fields[2].endswith(f":{client_port:04X}")
                and fields[3] == "01"):
            return fields[9]
    raise AssertionError(f"no connection from port {client_port} to {port}")


def _ask(served: Served, workers: list[int], path: str) -> tuple[int, int, bytes]:
    """GET ``path`` on a new connection: (the worker that answered, status, body). The
    connection stays open (keep-alive) until the worker holding it is found."""
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=15)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        assert connection.sock is not None
        inode = _connection_inode(served.port, connection.sock.getsockname()[1])
        holders = [pid for pid in [served.process.pid, *workers]
                   if inode in _socket_inodes(pid)]
        assert holders and holders[0] in workers, (holders, workers)
        return holders[0], response.status, body
    finally:
        connection.close()


def _ask_every_worker(served: Served, workers: list[int], path: str, timeout: float
                      ) -> dict[int, list[tuple[int, bytes]]]:
    """Batches of concurrent requests on new connections until every worker has answered
    (the kernel hands each connection to whichever worker accepts first): {worker:
    [(status, body)]}."""
    answers: dict[int, list[tuple[int, bytes]]] = {}
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(8) as pool:
        while set(answers) != set(workers) and time.monotonic() < deadline:
            batch = [pool.submit(_ask, served, workers, path) for _ in range(8)]
            for pid, status, body in (future.result() for future in batch):
                answers.setdefault(pid, []).append((status, body))
    assert set(answers) == set(workers), (f"in {timeout:g}s answered by {sorted(answers)} "
                                          f"only, workers {workers}")
    return answers


def _tree_exits(served: Served, seconds: float) -> None:
    """After SIGTERM: `serve` and every process it started are gone within ``seconds``."""
    _exits_within(served, seconds)
    deadline = time.monotonic() + 5
    while _group(served.process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group(served.process.pid), "left running: " + str(_group(served.process.pid))


@pytest.mark.postgres
def test_fhir_server_workers_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    config = _realm(tmp_path, database_url=pg_url)
    listen, base = _free_listen()
    with _serve(config, base, tmp_path / "ehr.log",
                "--component", "ehr", "--workers", "2", "--listen", listen) as served:
        workers = _wait_for_workers(served, 2)
        with httpx.Client(base_url=base, timeout=15) as client:
            for _ in range(50):
                metadata = client.get("/fhir/metadata")
                assert metadata.status_code == 200, metadata.text
                assert metadata.json()["resourceType"] == "CapabilityStatement"
        # Each worker serves: both answer the FHIR API.
        for answers in _ask_every_worker(served, workers, "/fhir/metadata", 30).values():
            for status, body in answers:
                assert status == 200, body
                assert json.loads(body)["resourceType"] == "CapabilityStatement"
        assert _workers(served) == workers  # none restarted
        served.process.send_signal(signal.SIGTERM)
        _tree_exits(served, 20)
    assert "Traceback" not in served.output(), served.output()


@pytest.mark.postgres
def test_auth_server_workers_on_postgresql_drain_together(tmp_path: Path,
                                                          pg_url: str) -> None:
    """The supervisor passes SIGTERM on to its workers: each drains, then all stop."""
    drain = 8
    config = _realm(tmp_path, public_urls=True, database_url=pg_url,
                    extra=f"[deployment]\ndrain_seconds = {drain}\n")
    listen, base = _free_listen()
    with _serve(config, base, tmp_path / "as.log",
                "--component", "auth_server", "--workers", "2", "--listen", listen) as served:
        workers = _wait_for_workers(served, 2)
        with httpx.Client(base_url=base, timeout=15) as client:
            for _ in range(20):
                discovery = client.get("/.well-known/openid-configuration")
                assert discovery.status_code == 200, discovery.text
                assert discovery.json()["issuer"] == AS_PUBLIC
            ready = client.get("/readyz")
            assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        sigterm = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        # The supervisor passes SIGTERM on within a second (it looks every 0.5 s); from
        # then on each worker answers /readyz 503 while it still serves the rest.
        draining: set[int] = set()
        while draining != set(workers):
            assert time.monotonic() < sigterm + drain - 4.0, f"draining: {draining}"
            batch = _ask_every_worker(served, workers, "/readyz", 2.0)
            for pid, answers in batch.items():
                assert set(answers) <= {(200, _READY_BODY), (503, _DRAINING_BODY)}, answers
                if pid in draining:  # once draining, a worker stays so
                    assert set(answers) == {(503, _DRAINING_BODY)}, answers
                elif (503, _DRAINING_BODY) in answers:
                    draining.add(pid)
        for answers in _ask_every_worker(served, workers, "/readyz", 2.0).values():
            assert set(answers) == {(503, _DRAINING_BODY)}, answers
        discovery = _ask_every_worker(served, workers, "/.well-known/openid-configuration", 2.0)
        for answers in discovery.values():
            assert {status for status, _ in answers} == {200}, answers
        assert time.monotonic() < sigterm + drain - 0.5, "too slow to tell"
        _tree_exits(served, 20)
        assert time.monotonic() - sigterm >= drain - 0.2, "the workers did not drain"
    assert "Traceback" not in served.output(), served.output()


@pytest.mark.postgres
def test_a_second_sigterm_cuts_the_drain_of_every_worker_short(tmp_path: Path,
                                                              pg_url: str) -> None:
    """`kill <pid>` twice (or `docker stop` after its grace) reaches only the supervisor:
    it passes the second signal on, so the workers stop without waiting out the drain."""
    config = _realm(tmp_path, database_url=pg_url, extra="[deployment]\ndrain_seconds = 60\n")
    listen, base = _free_listen()
    with _serve(config, base, tmp_path / "ehr.log",
                "--component", "ehr", "--workers", "2", "--listen", listen) as served:
        _wait_for_workers(served, 2)
        served.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while httpx.get(base + "/readyz", timeout=5).status_code != 503:
            assert time.monotonic() < deadline, "/readyz never turned 503"
            time.sleep(0.1)
        second = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        _tree_exits(served, 20)
        assert time.monotonic() - second < 15, "the workers waited out their drain"
    assert "Traceback" not in served.output(), served.output()


@pytest.mark.postgres
def test_metrics_of_every_worker_are_merged(tmp_path: Path, pg_url: str) -> None:
    """With two workers, /metrics counts the requests of both, whichever worker answers the
    scrape (prometheus_client's multiprocess mode)."""
    config = _realm(tmp_path, database_url=pg_url)
    listen, base = _free_listen()
    with _serve(config, base, tmp_path / "ehr.log",
                "--component", "ehr", "--workers", "2", "--listen", listen) as served:
        workers = _wait_for_workers(served, 2)
        answers = _ask_every_worker(served, workers, "/fhir/metadata", 20)
        total = sum(len(a) for a in answers.values())
        assert all(len(a) for a in answers.values())  # both workers served some
        pattern = re.compile(rb'smartrealm_http_requests_total\{component="ehr",method="GET",'
                             rb'route="/fhir/metadata",status="200"\} ([0-9.]+)')
        scrapes = _ask_every_worker(served, workers, "/metrics", 20)
        for worker, scraped in scrapes.items():
            for status, body in scraped:
                found = pattern.search(body)
                assert status == 200 and found is not None, body[:2000]
                assert float(found.group(1)) == total, (worker, found.group(1), total)
        served.process.send_signal(signal.SIGTERM)
        _tree_exits(served, 20)
