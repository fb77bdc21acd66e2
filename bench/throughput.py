"""Throughput of authenticated reads vs a bare ASGI app (target: `GET [base]/Patient/{id}`
with a valid token, scope check and SQLite read at ≥ 35% of a bare ASGI app's requests/s).

What it does, all on loopback, side by side in the same run:
1. a small stand-in authorization server (tests/guard/tokens.py: a real 2048-bit RSA key,
   its JWKS served by uvicorn at ``{issuer}/jwks``); tokens are signed with that key in
   the realm's format (docs/behaviour.md: RFC 9068, aud, scope, patient, authorization_details);
2. (b) the real EHR resource server (`build_resource_server`: SQLite store seeded with the
   realm's sample data, JWT validation that fetches the JWKS over HTTP, scope check,
   SQLite read, JSON rendering) under uvicorn, one worker, pinned with ``taskset -c 0``;
3. (a) a bare ASGI app that answers every request with a fixed JSON body (the very bytes
   the FHIR server returned for that Patient), under the same uvicorn settings and core;
4. ``wrk`` pinned to the other core (``taskset -c 1``) sends the identical request (with
   the ``Authorization`` header) to each server in turn, ``--rounds`` times, alternating;
   a non-2xx answer fails the run. Prints the load average before each round, requests/s
   of each round, the medians and the ratio FHIR / bare.

The token's signature is verified once and then served from the validator's cache
(guard/validator.py; exp is still re-checked on every request) — as for any client that
reuses its access token. Needs ``wrk`` and ``taskset`` (Debian: ``apt-get install wrk``).

    .venv/bin/python bench/throughput.py                  # 5 rounds of 10 s each
    .venv/bin/python bench/throughput.py --rounds 3 --duration 20 --connections 32
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from joserfc.jwk import RSAKey  # noqa: E402

from smartrealm.realm.config import RealmConfig, load_config  # noqa: E402

PATIENT = "p0001"
SERVER = "ehr"
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Scope]]
Send = Callable[[Scope], Awaitable[None]]


def realm_for(ports: dict[str, int], data_dir: Path) -> RealmConfig:
    """The default realm on these ports, its stores under ``data_dir`` (sample data on)."""
    return load_config().relocated(ports, data_dir)


# --------------------------------------------------------------------------- the servers
# Each runs in its own process: `python bench/throughput.py --role ROLE ...`.


def bare_app(body: bytes) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    headers = [(b"content-type", b"application/fhir+json"),
               (b"content-length", str(len(body)).encode())]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def serve_role(args: argparse.Namespace) -> None:
    import uvicorn
    app: Any
    if args.role == "bare":
        app = bare_app(Path(args.body).read_bytes())
    elif args.role == "jwks":
        from tests.guard.tokens import FakeAuthServer
        key = RSAKey.import_key(json.loads(Path(args.key).read_text()))
        app = FakeAuthServer(args.issuer, key=key).app
    else:
        from smartrealm.fhir.app import build_resource_server
        ports = json.loads(args.ports)
        app = build_resource_server(realm_for(ports, Path(args.data_dir)), SERVER)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, workers=1)


# --------------------------------------------------------------------------- orchestration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited ({child.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server on port {port} did not start")


@contextmanager
def server(role: str, port: int, pin: str | None, **options: str) -> Iterator[None]:
    cmd = [sys.executable, __file__, "--role", role, "--port", str(port)]
    for name, value in options.items():
        cmd += [f"--{name.replace('_', '-')}", value]
    if pin is not None:
        cmd = ["taskset", "-c", pin, *cmd]
    child = subprocess.Popen(cmd, cwd=ROOT)
    try:
        wait_for(port, child)
        yield
    finally:
        child.terminate()
        child.wait(timeout=30)


def check_tools() -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"bench/throughput.py needs {' and '.join(missing)}: install with "
                 f"`sudo apt-get install -y {'wrk' if 'wrk' in missing else 'util-linux'}` "
                 "(Debian/Ubuntu)")
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("bench/throughput.py needs 2 CPU cores (server on core 0, wrk on core 1)")


def mint(key: RSAKey, issuer: str, base: str) -> str:
    """A token shaped like the realm AS's (docs/behaviour.md), signed with the AS's key."""
    from tests.guard.tokens import FakeAuthServer, details_entry
    scope = "patient/Patient.rs"
    auth = FakeAuthServer(issuer, key=key)
    return auth.mint([base], scope, patient=PATIENT, lifetime=3600,
                     details=[details_entry(base, scope, PATIENT)])


def wrk(url: str, token: str, args: argparse.Namespace) -> float:
    cmd = ["taskset", "-c", "1", "wrk", "-t", "1", "-c", str(args.connections),
           "-d", f"{args.duration}s", "-H", f"Authorization: Bearer {token}", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    if bad or errors:
        raise RuntimeError(f"wrk saw failures against {url}:\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return float(found.group(1))


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def measure(args: argparse.Namespace, tmp: Path) -> tuple[list[float], list[float]]:
    ports = {"auth_server": free_port(), SERVER: free_port()}
    realm = realm_for(ports, tmp / "data")
    base = realm.server(SERVER).base_url
    key = RSAKey.generate_key(2048, parameters={"kid": "bench", "use": "sig",
                                                "alg": "RS256"})
    (tmp / "key.json").write_text(json.dumps(key.as_dict(private=True)))
    issuer = realm.auth_server.issuer
    token = mint(key, issuer, base)
    url = f"{base}/Patient/{PATIENT}"
    bare_port = free_port()
    with (server("jwks", ports["auth_server"], None, key=str(tmp / "key.json"),
                 issuer=issuer),
          server("fhir", ports[SERVER], "0", ports=json.dumps(ports),
                 data_dir=str(tmp / "data"))):
        reply = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert reply.status_code == 200, reply.text[:300]
        (tmp / "body.json").write_bytes(reply.content)
        print(f"  GET {url}: 200, {len(reply.content)} bytes; the bare app returns the same")
        with server("bare", bare_port, "0", body=str(tmp / "body.json")):
            bare_url = f"http://127.0.0.1:{bare_port}/fhir/Patient/{PATIENT}"
            return run_rounds(args, bare_url, url, token)


def run_rounds(args: argparse.Namespace, bare_url: str, url: str,
               token: str) -> tuple[list[float], list[float]]:
    wrk(bare_url, token, argparse.Namespace(**{**vars(args), "duration": 2}))  # warm up
    wrk(url, token, argparse.Namespace(**{**vars(args), "duration": 2}))
    bare: list[float] = []
    fhir: list[float] = []
    for n in range(1, args.rounds + 1):
        print(f"  round {n}: load average {load_average()}", flush=True)
        bare.append(wrk(bare_url, token, args))  # the same request bytes as the FHIR one
        fhir.append(wrk(url, token, args))
        print(f"    bare ASGI {bare[-1]:,.0f} req/s   FHIR read {fhir[-1]:,.0f} req/s   "
              f"ratio {fhir[-1] / bare[-1]:.1%}", flush=True)
    return bare, fhir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    for internal in ("--role", "--port", "--body", "--key", "--issuer", "--ports",
                     "--data-dir"):
        parser.add_argument(internal, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        args.port = int(args.port)
        serve_role(args)
        return
    check_tools()
    print(f"throughput: uvicorn (1 worker, httptools/uvloop as installed) on core 0, "
          f"wrk -t1 -c{args.connections} -d{args.duration}s on core 1")
    with tempfile.TemporaryDirectory(prefix="smartrealm-throughput-") as folder:
        bare, fhir = measure(args, Path(folder))
    b, f = statistics.median(bare), statistics.median(fhir)
    print(f"median of {args.rounds}: bare ASGI {b:,.0f} req/s, authenticated FHIR read "
          f"{f:,.0f} req/s = {f / b:.1%} of bare (target ≥ 35%); per-round ratios "
          + ", ".join(f"{x / y:.1%}" for x, y in zip(fhir, bare, strict=True)))


if __name__ == "__main__":
    main()
