"""Run a realm: the AS and every resource server, each its own process with its own uvicorn
on its own port (docs/behaviour.md: "the URL *is* the audience"). The parent starts the children,
waits until each answers, and stops them all together."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from smartrealm.core.defaults import SERVE_STARTUP_TIMEOUT as STARTUP_TIMEOUT
from smartrealm.realm.config import RealmConfig
from smartrealm.realm.tls import client_verify

AUTH_SERVER = "auth_server"


class RealmStartError(RuntimeError):
    """A component did not come up; the message carries what it printed."""


@dataclass(frozen=True)
class Component:
    name: str  # "auth_server" or a resource server id
    url: str  # issuer or FHIR base: the public URL, used in tokens, discovery and links
    listen: tuple[str, int] | None = None  # where it listens, when not at its public URL
    tls: bool = False  # the listener itself serves https ([tls] and an https URL)

    @property
    def host(self) -> str:
        return self.listen[0] if self.listen else urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        if self.listen:
            return self.listen[1]
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def probe(self) -> str:
        """Where `serve` asks whether the component is ready (serving/health.py): at the
        public URL's host (a certificate names it), or at the listener when it listens
        apart (an ingress in front may not be running)."""
        if self.listen is None:
            parts = urlsplit(self.url)
            return f"{parts.scheme}://{parts.netloc}/readyz"
        # A wildcard listener is asked on loopback.
        wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104
        host = wildcard.get(self.host, self.host)
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/readyz"

    @property
    def probe_sni(self) -> str | None:
        """The name the certificate carries when the probe goes to a TLS listener by
        address."""
        return urlsplit(self.url).hostname if self.listen and self.tls else None


@dataclass(frozen=True)
class Launch:
    """How children rebuild the parent's realm: the same file, relocated the same way."""

    config_path: Path | None
    ports: dict[str, int]
    data_dir: Path
    log_format: str = "text"  # "json": one JSON line per request (serving/observe.py)

    def args(self) -> list[str]:
        args = ["--ports", json.dumps(self.ports), "--data-dir", str(self.data_dir),
                "--log-format", self.log_format]
        return args + (["--config", str(self.config_path)] if self.config_path else [])

    def spec(self) -> dict[str, Any]:
        """For a worker process to rebuild the same realm (``from_spec``)."""
        return {"config": str(self.config_path) if self.config_path else None,
                "ports": self.ports, "data_dir": str(self.data_dir),
                "log_format": self.log_format}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Launch:
        config = spec.get("config")
        return cls(Path(config) if config else None, dict(spec.get("ports") or {}),
                   Path(spec["data_dir"]), str(spec.get("log_format") or "text"))


def components(realm: RealmConfig) -> list[Component]:
    def tls(url: str) -> bool:
        return realm.tls.serves and urlsplit(url).scheme == "https"

    issuer = realm.auth_server.issuer
    found = [Component(AUTH_SERVER, issuer, realm.auth_server.listen, tls(issuer))]
    found += [Component(rs.id, rs.base_url, rs.listen, tls(rs.base_url))
              for rs in realm.resource_servers]
    return found


def free_ports(names: Sequence[str], host: str = "127.0.0.1") -> dict[str, int]:
    """Ports the OS reports free now (bound and released; the child binds them next)."""
    ports: dict[str, int] = {}
    sockets = []
    for name in names:
        sock = socket.socket()
        sock.bind((host, 0))
        sockets.append(sock)
        ports[name] = int(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


def check_ports_free(realm: RealmConfig) -> None:
    """Refuse to start when a component's port cannot be bound, naming the component."""
    for component in components(realm):
        problem = port_problem(component.host, component.port)
        if problem is not None:
            raise RealmStartError(
                f"{component.name}: port {component.port} on {component.host} {problem} "
                f"({component.url})")


def port_problem(host: str, port: int) -> str | None:
    """Why a server could not listen on ``host:port`` now, or None when it could.

    The probe binds the way the server will (uvicorn sets ``SO_REUSEADDR`` on POSIX), so
    the connections a realm stopped a moment ago leave in TIME_WAIT (RFC 9293 §3.6.1, up to
    a minute on Linux) do not count as "in use", while a socket still listening there does:
    on Linux and the BSDs ``SO_REUSEADDR`` never lets a second socket bind a port another
    one is listening on. Windows is left at its default, where ``SO_REUSEADDR`` would let
    us bind over a live listener and TIME_WAIT does not block a bind anyway."""
    with socket.socket() as sock:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return _bind_failure(exc)
    return None


def _bind_failure(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "is in use by another program"
    if exc.errno == errno.EACCES:
        return "needs privileges this user lacks (ports below 1024 usually do)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "cannot be used: the address is not one of this machine's"
    return f"cannot be bound: {exc.strerror or exc}"


@dataclass
class RunningRealm:
    components: list[Component]
    children: dict[str, subprocess.Popen[bytes]]
    log_dir: Path

    def exited(self) -> list[str]:
        """Components whose process has ended (the parent reports them and stops)."""
        return [name for name, child in self.children.items() if child.poll() is not None]

    def log_tail(self, name: str) -> str:
        return _tail(self.log_dir / f"{name}.log")


@contextmanager
def running_realm(realm: RealmConfig, launch: Launch) -> Iterator[RunningRealm]:
    """Start every component as a child process; yield once all answer; stop them after."""
    check_ports_free(realm)
    log_dir = realm.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    running = RunningRealm(components(realm), {}, log_dir)
    try:
        for component in running.components:
            running.children[component.name] = _spawn(component, launch, log_dir)
        _wait_until_ready(running, client_verify(realm.tls))
        yield running
    finally:
        # SIGTERM lets each child drain ([deployment] drain_seconds) and finish what it has
        # in flight; only then does the grace end.
        stop_children(list(running.children.values()),
                      grace=10.0 + realm.deployment.drain_seconds)


def _spawn(component: Component, launch: Launch, log_dir: Path) -> subprocess.Popen[bytes]:
    log = (log_dir / f"{component.name}.log").open("wb")
    cmd = [sys.executable, "-m", "smartrealm.cli", "run-component", component.name,
           *launch.args()]
    # Our own interpreter and arguments only. The children stay in our process group so a
    # terminal's Ctrl-C reaches them too.
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                            env=dict(os.environ))


def _wait_until_ready(running: RunningRealm, verify: ssl.SSLContext) -> None:
    """Probe each component (over https with the realm's CA, realm/tls.py) until it
    answers 200."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    pending = list(running.components)
    with httpx.Client(timeout=2.0, verify=verify) as http:
        while pending:
            component = pending[0]
            if component.name in running.exited():
                raise RealmStartError(f"{component.name} exited during start-up:\n"
                                      + running.log_tail(component.name))
            problem = _probe(http, component.probe, component.probe_sni)
            if problem is None:
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise RealmStartError(f"{component.name} did not answer {component.probe} "
                                      f"within {STARTUP_TIMEOUT:.0f}s (last: {problem})")
            time.sleep(0.1)


def _probe(http: httpx.Client, url: str, sni: str | None = None) -> str | None:
    """None once ``url`` answers 200, else what went wrong (e.g. a certificate error)."""
    try:
        status = http.get(url, extensions={"sni_hostname": sni} if sni else None).status_code
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if status == 200 else f"status {status}"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_children(children: list[subprocess.Popen[bytes]], grace: float = 10.0) -> None:
    """SIGTERM lets uvicorn finish in-flight requests; SIGKILL whatever outlives the grace."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def stop_on_signals() -> None:
    """SIGINT and SIGTERM both stop the realm. Installed explicitly: a process started in the
    background by a non-interactive shell (nohup, `cmd &`, some CI runners) inherits SIGINT
    as *ignored*, and Ctrl-C or `kill -INT` would then never reach us."""
    def on_signal(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def watch(running: RunningRealm) -> str:
    """Block until Ctrl-C, SIGTERM or a component's exit; returns why it stopped."""
    try:
        while not running.exited():
            time.sleep(0.5)
    except KeyboardInterrupt:
        return "interrupted"
    name = running.exited()[0]
    return f"{name} exited unexpectedly:\n{running.log_tail(name)}"
