"""The load-balanced topology of deploy/ as real processes: a PostgreSQL database, two
instances of the AS and two of the EHR (`smartrealm serve --component NAME --listen ...`),
one imaging and one lab server, and HAProxy (Debian's package) in round-robin in front of
each, listening on the public ports of the realm file, health-checking `/readyz`. The
HAProxy configuration is rendered from deploy/haproxy.cfg, the one the compose file uses."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from smartrealm.realm.config import RealmConfig, load_config
from smartrealm.realm.runner import AUTH_SERVER, free_ports
from tests.e2e.serve import realm_file

CLI = [sys.executable, "-m", "smartrealm.cli"]
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# component → how many instances behind the balancer (the compose file's replicas)
INSTANCES = {AUTH_SERVER: 2, "ehr": 2, "imaging": 1, "lab": 1}


@dataclass
class Instance:
    component: str
    name: str  # the HAProxy server name, e.g. auth_server_1
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Balanced:
    realm: RealmConfig
    config: Path
    instances: dict[str, Instance] = field(default_factory=dict)
    haproxy: subprocess.Popen[bytes] | None = None
    logs: Path = Path()

    def of(self, component: str) -> list[Instance]:
        return [i for i in self.instances.values() if i.component == component]

    def start(self, instance: Instance) -> None:
        log = (self.logs / f"{instance.name}.log").open("ab")
        instance.process = subprocess.Popen(
            [*CLI, "serve", "--config", str(self.config), "--component", instance.component,
             "--listen", f"127.0.0.1:{instance.port}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_ready(instance.url, instance.process, self.logs / f"{instance.name}.log")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args, "--config", str(self.config)],
                              capture_output=True, text=True, timeout=60)


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path,
               timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url} exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never became ready:\n{log.read_text()[-3000:]}")


def haproxy_config(realm: RealmConfig, instances: dict[str, Instance]) -> str:
    """deploy/haproxy.cfg with this run's public ports and instance addresses."""
    template = (DEPLOY / "haproxy.cfg").read_text()
    public = {AUTH_SERVER: realm.auth_server.issuer,
              **{rs.id: rs.base_url for rs in realm.resource_servers}}
    for component, url in public.items():  # loopback ports, no TLS (a loopback realm)
        template = re.sub(rf"bind \*:{_default_port(component)} .*",
                          f"bind 127.0.0.1:{urlsplit(url).port}", template)
    for instance in instances.values():
        template = re.sub(rf"(server {instance.name} )\S+:\d+", rf"\g<1>127.0.0.1:{instance.port}",
                          template)
    return template


def _default_port(component: str) -> int:
    return {AUTH_SERVER: 8700, "ehr": 8701, "imaging": 8702, "lab": 8703}[component]


def _haproxy() -> str:
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(found):
        raise RuntimeError("HAProxy is not installed (apt-get install haproxy)")
    return found


@contextmanager
def balanced_realm(tmp_path: Path, database_url: str) -> Iterator[Balanced]:
    config = realm_file(tmp_path, extra='[deployment]\ntrusted_proxies = ["127.0.0.1/32"]\n'
                                          "drain_seconds = 2\n")
    config.write_text(config.read_text().replace('url = ""', f'url = "{database_url}"', 1))
    realm = load_config(config)
    names = [f"{c}_{n}" for c, count in INSTANCES.items() for n in range(1, count + 1)]
    ports = free_ports(names)
    logs = tmp_path / "logs"
    logs.mkdir()
    setup = Balanced(realm, config, {n: Instance(n.rsplit("_", 1)[0], n, ports[n])
                                     for n in names}, logs=logs)
    try:
        # One after another: the first instance of each creates its schema and seeds it.
        for instance in setup.instances.values():
            setup.start(instance)
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(haproxy_config(realm, setup.instances))
        check = subprocess.run([_haproxy(), "-c", "-f", str(cfg)], capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        setup.haproxy = subprocess.Popen([_haproxy(), "-db", "-f", str(cfg)],
                                         stdout=(logs / "haproxy.log").open("wb"),
                                         stderr=subprocess.STDOUT, start_new_session=True)
        for url in (realm.auth_server.issuer, *(rs.base_url for rs in realm.resource_servers)):
            _wait_public(url, setup.haproxy, logs / "haproxy.log")
        yield setup
    finally:
        for process in [setup.haproxy, *(i.process for i in setup.instances.values())]:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [setup.haproxy, *(i.process for i in setup.instances.values())]:
            if process is not None:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def _wait_public(url: str, haproxy: subprocess.Popen[bytes], log: Path) -> None:
    root = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
    wait_ready(root, haproxy, log, timeout=30)
