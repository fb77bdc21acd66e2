"""Scaling out on 2 cores: token endpoint and authenticated FHIR read throughput with one and
with two worker processes per component, and through HAProxy in front of two instances of
each — all on one throwaway PostgreSQL cluster, the way an operator runs it.

* ``smartrealm client add`` registers a Backend Services client (private_key_jwt, ES384), then
  ``smartrealm serve --component auth_server`` and ``--component ehr`` run as subprocesses
  with ``--workers 1`` or ``--workers 2`` (or, for HAProxy, two instances of each with
  ``--listen`` on private ports and HAProxy on the public ones, deploy/haproxy.cfg).
* Token endpoint: ``client_credentials`` requests, each with a fresh assertion (signed
  before the round, outside the timed part) — bench/token_endpoint.py's load generator.
* FHIR read: ``wrk`` with one system token, ``GET [base]/Patient/p0001``.
* The servers are not pinned (two workers may use both cores). The token load generator
  (a Python asyncio client, bench/token_endpoint.py) stays pinned to core 1 and ``wrk`` and
  PostgreSQL float: on 2 cores the load and the database share the CPU with the servers;
  configurations alternate round by round. Each
  round also prints the share of CPU time left idle on the machine while it ran: a second
  worker can only add throughput where one worker left a core idle. Prints every round, the
  medians, and the ratio two workers / one worker (goal ≥ 1.6).

    .venv/bin/python bench/scale.py                 # 3 rounds
    .venv/bin/python bench/scale.py --rounds 5 --requests 3000 --duration 10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
import token_endpoint as te  # noqa: E402
from tests.e2e.balanced import Instance, haproxy_config  # noqa: E402
from tests.pg import postgres_cluster  # noqa: E402

CONFIGS = ("1 worker", "2 workers", "HAProxy, 2 instances")


@contextmanager
def started(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, not pinned: with two workers it may use both cores."""
    with te.process(args, pin=False, stdout=log.open("ab"), stderr=subprocess.STDOUT) as proc:
        yield proc


def realm_file(work: Path, ports: list[int], database_url: str) -> Path:
    config = te.realm_file(work, ports)
    text = config.read_text().replace('url = ""', f'url = "{database_url}"', 1)
    config.write_text(text + '\n[deployment]\ntrusted_proxies = ["127.0.0.1/32"]\n')
    return config


@contextmanager
def topology(name: str, config: Path, work: Path, ports: list[int]) -> Iterator[None]:
    """The AS and the EHR as ``name`` says, answering on the realm's public ports."""
    serve = [str(te.SMARTREALM), "serve", "--config", str(config)]
    log = work / "serve.log"
    with ExitStack() as stack:
        if name != CONFIGS[2]:
            workers = "1" if name == CONFIGS[0] else "2"
            for component, port in (("auth_server", ports[0]), ("ehr", ports[1])):
                proc = stack.enter_context(started(
                    [*serve, "--component", component, "--workers", workers], log))
                te.wait_http(f"http://127.0.0.1:{port}/readyz", proc)
        else:
            private = te.free_ports(4)
            instances = {}
            for (component, n), port in zip((("auth_server", 1), ("auth_server", 2),
                                             ("ehr", 1), ("ehr", 2)), private, strict=True):
                proc = stack.enter_context(started(
                    [*serve, "--component", component, "--listen", f"127.0.0.1:{port}"], log))
                te.wait_http(f"http://127.0.0.1:{port}/readyz", proc)
                instances[f"{component}_{n}"] = Instance(component, f"{component}_{n}", port)
            cfg = work / "haproxy.cfg"
            cfg.write_text(_haproxy_text(config, instances))
            proc = stack.enter_context(started([_haproxy(), "-db", "-f", str(cfg)], log))
            for port in ports[:2]:
                te.wait_http(f"http://127.0.0.1:{port}/readyz", proc)
        yield


def _haproxy_text(config: Path, instances: dict[str, Instance]) -> str:
    from smartrealm.realm.config import load_config
    text = haproxy_config(load_config(config), instances)
    # Only the AS and the EHR run here: drop the other backends' servers.
    return re.sub(r"^\s+server (imaging|lab)_\d+ .*$", "", text, flags=re.M)


def _haproxy() -> str:
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(found):
        raise SystemExit("HAProxy is needed: apt-get install haproxy")
    return found


def system_token(issuer: str, resource: str, client: te.Client, private_jwk: dict[str, object]
                 ) -> str:
    [assertion] = client.assertions(private_jwk, te.BACKEND_ID, f"{issuer}/token", 1)
    response = httpx.post(f"{issuer}/token", data={
        "grant_type": "client_credentials", "scope": te.SCOPE, "resource": resource,
        "client_assertion_type": te.ASSERTION_TYPE, "client_assertion": assertion})
    response.raise_for_status()
    return str(response.json()["access_token"])


def cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of all cores since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


def idle_share(before: tuple[int, int]) -> float:
    idle, total = cpu_times()
    return (idle - before[0]) / max(1, total - before[1])


def wrk(url: str, token: str, duration: int, connections: int) -> tuple[float, str]:
    """Requests/s, and what went wrong (non-2xx answers, timeouts) — printed beside the
    figure rather than hidden in it."""
    done = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-H",
                           f"Authorization: Bearer {token}", url],
                          capture_output=True, text=True, check=True)
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if match is None:
        raise SystemExit(done.stdout)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    late = re.search(r"timeout (\d+)", done.stdout)
    problems = [f"{bad.group(1)} non-2xx" if bad else "",
                f"{late.group(1)} timeouts" if late and late.group(1) != "0" else ""]
    return float(match.group(1)), ", ".join(p for p in problems if p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000, help="token requests a round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=8, help="seconds of wrk a round")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="smartrealm-scale-") as tmp, \
            postgres_cluster() as database_url:
        run(args, Path(tmp), database_url)


def run(args: argparse.Namespace, work: Path, database_url: str) -> None:
    ports = te.free_ports(4)
    config = realm_file(work, ports, database_url)
    issuer, resource = f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}/fhir"
    signer = te.Signer.generate()
    (work / "jwks.json").write_text(json.dumps(signer.public_jwks()))
    data_dir = work / "data"
    client = te.Client()
    tokens: dict[str, list[float]] = {c: [] for c in CONFIGS}
    reads: dict[str, list[float]] = {c: [] for c in CONFIGS}
    try:
        with topology(CONFIGS[0], config, work, ports):  # creates the schemas and keys
            te.smartrealm("client", "add", "--name", "Bench backend", "--client-id",
                          te.BACKEND_ID, "--grant-type", "client_credentials", "--scope",
                          te.SCOPE, "--jwks-file", str(work / "jwks.json"), config=config,
                          data_dir=data_dir)
        print(f"cores: {os.cpu_count()}; token requests a round: {args.requests} over "
              f"{args.connections} connections; reads: wrk {args.duration} s, 32 connections")
        for round_no in range(args.rounds):
            order = CONFIGS if round_no % 2 == 0 else tuple(reversed(CONFIGS))
            for name in order:
                with topology(name, config, work, ports):
                    bodies = te.backend_bodies(client.assertions(
                        signer.private_jwk, te.BACKEND_ID, f"{issuer}/token", args.requests),
                        resource)
                    before = cpu_times()
                    rate = client.run(te.Load(ports[0], "/token", bodies, {},
                                              args.connections)).rate
                    idle_tokens = idle_share(before)
                    token = system_token(issuer, resource, client, signer.private_jwk)
                    before = cpu_times()
                    read, problems = wrk(f"{resource}/Patient/p0001", token, args.duration, 32)
                    idle_reads = idle_share(before)
                tokens[name].append(rate)
                reads[name].append(read)
                print(f"  round {round_no + 1} {name:<22} {rate:8.1f} tokens/s "
                      f"(CPU idle {idle_tokens:4.0%}) {read:9.1f} reads/s "
                      f"(CPU idle {idle_reads:4.0%})" + (f" [{problems}]" if problems else ""))
    finally:
        client.close()
    print("medians:")
    for name in CONFIGS:
        print(f"  {name:<22} {statistics.median(tokens[name]):8.1f} tokens/s "
              f"{statistics.median(reads[name]):9.1f} reads/s")
    for label, rates in (("tokens", tokens), ("reads", reads)):
        one, two = statistics.median(rates[CONFIGS[0]]), statistics.median(rates[CONFIGS[1]])
        three = statistics.median(rates[CONFIGS[2]])
        print(f"  {label}: 2 workers / 1 worker = {two / one:.2f}x (goal >= 1.6); "
              f"HAProxy 2 instances / 1 worker = {three / one:.2f}x")


if __name__ == "__main__":
    main()
