"""Token endpoint throughput: smartrealm side by side with node-oidc-provider 9.

Backend Services, exactly the same work on both: ``client_credentials`` with a
private_key_jwt client assertion signed ES384 (a fresh ``jti`` in every request, so every
request is a first use the server must record), one RFC 8707 ``resource``, an RS256 JWT
access token in the answer.

* smartrealm runs the way a user runs it: ``smartrealm client add`` then ``smartrealm serve``
  as subprocesses, from an empty data directory, with a realm file that only moves the
  default realm to free loopback ports.
* node-oidc-provider (the version pinned in bench/peers/package-lock.json, installed with
  ``npm ci`` into bench/peers/node_modules) runs bench/peers/oidc_provider.mjs: its in-memory
  adapter, the same kind of client, RS256 JWT access tokens via resource indicators.
* Both servers are pinned to the same core (``taskset -c 0``); the load generator (an
  asyncio HTTP/1.1 client, keep-alive connections) and the assertion signer run on the
  other core. Assertions are signed before each round, outside the timed part.
* Rounds alternate between the two servers; every answer must be 200 with an
  ``access_token``, else the run fails. Prints each round's tokens/s, the medians and the
  ratio smartrealm / oidc-provider.
* Then the floor both servers share: the two signature operations of a request (RS256 sign,
  ES384 verify) timed alone on the same pinned core, in Python's ``cryptography`` and in
  Node's ``crypto`` (both OpenSSL). No server can issue faster than one token per
  (sign + verify); the report prints that ceiling and the highest ratio it allows against the
  peer's measured rate.

Then, on smartrealm only, the authorization-code exchange (codes obtained beforehand through
the real login and consent pages; codes live 60 s, so each round gets its own) and refresh
(each connection follows its own rotating refresh-token chain) for the public demo app and
for a ``client_secret_basic`` client (``smartrealm client add --secret``).

    .venv/bin/python bench/token_endpoint.py                       # 5 rounds
    .venv/bin/python bench/token_endpoint.py --rounds 3 --requests 3000 --connections 16
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "bench" / "peers"
SMARTREALM = ROOT / ".venv" / "bin" / "smartrealm"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE = "system/*.rs"
BACKEND_ID = "bench-backend"
SERVER_CORE, CLIENT_CORE = 0, 1


# ----------------------------------------------------------------------------- keys, JWTs


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Signer:
    """An ES384 key (private JWK as JSON) and the assertions it signs."""

    private_jwk: dict[str, Any]

    @classmethod
    def generate(cls) -> Signer:
        from joserfc.jwk import ECKey
        key = ECKey.generate_key("P-384", parameters={"kid": "bench-es384"}, private=True)
        return cls(dict(key.as_dict(private=True)))

    def public_jwks(self) -> dict[str, Any]:
        public = {k: v for k, v in self.private_jwk.items() if k != "d"}
        return {"keys": [{**public, "alg": "ES384", "use": "sig"}]}


def sign_assertions(private_jwk: dict[str, Any], client_id: str, audience: str,
                    count: int) -> list[str]:
    """``count`` client assertions (RFC 7523), each with its own jti. Plain ``cryptography``
    (fast), in whatever process calls it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    def num(name: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(private_jwk[name] + "=="), "big")

    public = ec.EllipticCurvePublicNumbers(num("x"), num("y"), ec.SECP384R1())
    key = ec.EllipticCurvePrivateNumbers(num("d"), public).private_key()
    header = _b64(json.dumps({"alg": "ES384", "kid": private_jwk["kid"],
                              "typ": "JWT"}).encode())
    now = int(time.time())
    out = []
    for _ in range(count):
        claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now,
                  "exp": now + 240, "jti": secrets.token_urlsafe(24)}
        signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA384())))
        out.append(f"{signing_input}.{_b64(r.to_bytes(48, 'big') + s.to_bytes(48, 'big'))}")
    return out


def rsa_signing_jwk() -> dict[str, Any]:
    from joserfc.jwk import RSAKey
    key = RSAKey.generate_key(2048, parameters={"kid": "bench-rs256", "alg": "RS256",
                                                "use": "sig"}, private=True)
    return dict(key.as_dict(private=True))


def python_crypto_floor(count: int) -> dict[str, float]:
    """Median ms of RS256 sign (2048-bit key) and ES384 verify in ``cryptography``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP384R1())
    message = b"x" * 400
    signature = ec_key.sign(message, ec.ECDSA(hashes.SHA384()))
    public = ec_key.public_key()

    def batch(operation: Any) -> float:
        start = time.perf_counter()
        for _ in range(count):
            operation()
        return (time.perf_counter() - start) / count * 1000

    sign = [batch(lambda: rsa_key.sign(message, padding.PKCS1v15(), hashes.SHA256()))
            for _ in range(5)]
    verify = [batch(lambda: public.verify(signature, message, ec.ECDSA(hashes.SHA384())))
              for _ in range(5)]
    return {"rs256_sign_ms": statistics.median(sign),
            "es384_verify_ms": statistics.median(verify)}


def crypto_floor(count: int = 300) -> dict[str, dict[str, float]]:
    """Both runtimes' signature costs, each measured in its own process on the server core."""
    pinned = ["taskset", "-c", str(SERVER_CORE)]
    python = subprocess.run([*pinned, sys.executable, __file__, "--crypto-floor-only",
                             str(count)], capture_output=True, text=True, check=True)
    node = subprocess.run([*pinned, "node", str(PEERS / "crypto_floor.mjs"), str(count)],
                          capture_output=True, text=True, check=True)
    return {"python": json.loads(python.stdout), "node": json.loads(node.stdout)}


def report_floor(floor: dict[str, dict[str, float]], peer_rate: float) -> None:
    print("Signature floor on the server core (RS256 sign + ES384 verify, nothing else):")
    for runtime, label in (("python", "Python cryptography"), ("node", "Node crypto")):
        ms = floor[runtime]["rs256_sign_ms"] + floor[runtime]["es384_verify_ms"]
        print(f"  {label:<20} sign {floor[runtime]['rs256_sign_ms']:.3f} ms + verify "
              f"{floor[runtime]['es384_verify_ms']:.3f} ms = {ms:.3f} ms "
              f"-> at most {1000 / ms:.0f} tokens/s")
    ms = floor["python"]["rs256_sign_ms"] + floor["python"]["es384_verify_ms"]
    print(f"  highest ratio any Python server reaches against {peer_rate:.0f}/s: "
          f"{1000 / ms / peer_rate:.2f}x (with zero cost besides the two signatures)")


# ----------------------------------------------------------------------------- load generator


@dataclass(frozen=True)
class Load:
    """One round: these request bodies, POSTed to ``path`` over ``connections`` keep-alive
    connections. ``chain``: each answer's ``refresh_token`` is the next request of its
    connection (rotating refresh tokens), for ``requests`` requests in all."""

    port: int
    path: str
    bodies: list[bytes]
    headers: dict[str, str]
    connections: int
    chain: str | None = None  # a body template with {token}, for refresh chains
    requests: int = 0


@dataclass(frozen=True)
class Result:
    ok: int
    seconds: float
    failure: str | None

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def _request(load: Load, body: bytes) -> bytes:
    head = [f"POST {load.path} HTTP/1.1", f"Host: 127.0.0.1:{load.port}",
            "Content-Type: application/x-www-form-urlencoded",
            f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in load.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = re.search(rb"(?i)content-length:\s*(\d+)", head)
    if length is None:
        raise SystemExit(f"no Content-Length in {head!r}")
    return status, await reader.readexactly(int(length.group(1)))


async def _drive(load: Load) -> Result:
    bodies = iter(load.bodies)
    failure: list[str] = []
    ok = 0

    async def connection(seed: bytes | None) -> None:
        nonlocal ok
        reader, writer = await asyncio.open_connection("127.0.0.1", load.port)
        body = seed
        try:
            while not failure:
                if load.chain is None:
                    body = next(bodies, None)
                elif ok >= load.requests:
                    body = None
                if body is None:
                    return
                status, answer = await _exchange(reader, writer, _request(load, body))
                data = json.loads(answer)
                if status != 200 or "access_token" not in data:
                    failure.append(f"{status} {answer[:300]!r}")
                    return
                ok += 1
                if load.chain is not None:
                    body = load.chain.format(token=data["refresh_token"]).encode()
        finally:
            writer.close()

    seeds: list[bytes | None] = (list(load.bodies) if load.chain is not None
                                 else [None] * load.connections)
    start = time.perf_counter()
    await asyncio.gather(*(connection(seed) for seed in seeds))
    return Result(ok, time.perf_counter() - start, failure[0] if failure else None)


def _run_load(load: Load) -> Result:
    os.sched_setaffinity(0, {CLIENT_CORE})
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_drive(load))


class Client:
    """A process pinned to the other core: signs assertions and drives the load."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pool = ctx.Pool(1, initializer=os.sched_setaffinity, initargs=(0, {CLIENT_CORE}))

    def assertions(self, jwk: dict[str, Any], client_id: str, aud: str, n: int) -> list[str]:
        return list(self._pool.apply(sign_assertions, (jwk, client_id, aud, n)))

    def run(self, load: Load) -> Result:
        result: Result = self._pool.apply(_run_load, (load,))
        if result.failure:
            raise SystemExit(f"a request failed: {result.failure}")
        return result

    def close(self) -> None:
        self._pool.terminate()


# ----------------------------------------------------------------------------- processes


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    import httpx
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def process(args: list[str], *, pin: bool = True,
            **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    """``args`` running for the block (pinned to the server core unless ``pin=False``)."""
    pinned = ["taskset", "-c", str(SERVER_CORE)] if pin else []
    proc = subprocess.Popen([*pinned, *args], **kwargs)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def smartrealm(*args: str, config: Path, data_dir: Path) -> str:
    done = subprocess.run([str(SMARTREALM), *args, "--config", str(config),
                           "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    if done.returncode:
        raise SystemExit(f"smartrealm {' '.join(args)} failed: {done.stderr or done.stdout}")
    return done.stdout


def _printed(label: str, output: str) -> str:
    match = re.search(rf"{label}\s+(\S+)", output)
    if match is None:
        raise SystemExit(f"no {label} in: {output}")
    return match.group(1)


def realm_file(directory: Path, ports: list[int]) -> Path:
    """The default realm, moved to free ports (nothing else changed)."""
    text = (ROOT / "src/smartrealm/realm/default_realm.toml").read_text()
    for default, port in zip((8700, 8701, 8702, 8703), ports, strict=True):
        text = text.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}")
    path = directory / "realm.toml"
    path.write_text(text)
    return path


def npm_ci() -> None:
    if not (PEERS / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=PEERS,
                       check=True)


# ----------------------------------------------------------------------------- code flow


def authorization_code(http: Any, issuer: str, client_id: str, redirect_uri: str,
                       resource: str) -> tuple[str, str]:
    """(code, code_verifier) through the real login and consent pages."""
    import hashlib
    verifier = secrets.token_urlsafe(48)
    challenge = _b64(hashlib.sha256(verifier.encode()).digest())
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "scope": "launch/patient openid fhirUser offline_access patient/*.rs",
              "state": secrets.token_urlsafe(16), "code_challenge": challenge,
              "code_challenge_method": "S256", "resource": resource}
    http.cookies.clear()
    page = http.get(f"{issuer}/authorize", params=params, follow_redirects=True)
    page = http.post(f"{issuer}/interaction/login", follow_redirects=True, data={
        "csrf_token": _csrf(page.text), "username": "patient", "password": "patient-demo"})
    answer = http.post(f"{issuer}/interaction/consent",
                       data={"csrf_token": _csrf(page.text), "decision": "approve"})
    location = answer.headers.get("location", "")
    code = parse_qs(urlsplit(location).query).get("code")
    if not code:
        raise SystemExit(f"no code: {answer.status_code} {location or answer.text[:300]}")
    return code[0], verifier


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if match is None:
        raise SystemExit(f"no csrf_token in the page: {html[:300]}")
    return match.group(1)


# ----------------------------------------------------------------------------- main


def backend_bodies(assertions: list[str], resource: str) -> list[bytes]:
    return [urlencode({"grant_type": "client_credentials", "scope": SCOPE,
                       "resource": resource, "client_assertion_type": ASSERTION_TYPE,
                       "client_assertion": a}).encode() for a in assertions]


def report(name: str, rates: list[float]) -> float:
    median = statistics.median(rates)
    print(f"  {name:<42} median {median:8.1f}/s   rounds: "
          + " ".join(f"{r:.0f}" for r in rates))
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000,
                        help="token requests per server per round (Backend Services)")
    parser.add_argument("--codes", type=int, default=300,
                        help="authorization codes per client per round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--skip-grants", action="store_true",
                        help="only the Backend Services comparison")
    parser.add_argument("--crypto-floor-only", type=int, metavar="COUNT",
                        help=argparse.SUPPRESS)  # the Python half of crypto_floor()
    args = parser.parse_args()
    if args.crypto_floor_only:
        print(json.dumps(python_crypto_floor(args.crypto_floor_only)))
        return
    if len(os.sched_getaffinity(0)) < 2 or shutil.which("taskset") is None:
        raise SystemExit("needs 2 cores and taskset")
    npm_ci()
    work = Path(tempfile.mkdtemp(prefix="smartrealm-token-bench-"))
    client = Client()
    try:
        run(args, work, client)
    finally:
        client.close()
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path, client: Client) -> None:
    ports = free_ports(5)
    config, data_dir = realm_file(work, ports[:4]), work / "data"
    issuer, resource = f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}/fhir"
    signer = Signer.generate()
    (work / "jwks.json").write_text(json.dumps(signer.public_jwks()))
    smartrealm("client", "add", "--name", "Bench backend", "--client-id", BACKEND_ID,
               "--grant-type", "client_credentials", "--scope", SCOPE,
               "--jwks-file", str(work / "jwks.json"), config=config, data_dir=data_dir)
    added = smartrealm("client", "add", "--name", "Bench web", "--secret",
                       "--redirect-uri", "http://127.0.0.1:9/cb", config=config,
                       data_dir=data_dir)
    web_id, web_secret = _printed("client_id", added), _printed("client_secret", added)
    peer_port = ports[4]
    peer_config = work / "oidc.json"
    peer_config.write_text(json.dumps({
        "port": peer_port, "client_id": BACKEND_ID, "client_jwks": signer.public_jwks(),
        "resource": resource, "scope": SCOPE, "signing_jwk": rsa_signing_jwk()}))
    log = (work / "serve.log").open("wb")
    with process([str(SMARTREALM), "serve", "--config", str(config), "--data-dir",
                  str(data_dir)], stdout=log, stderr=subprocess.STDOUT) as realm, \
            process(["node", str(PEERS / "oidc_provider.mjs"), str(peer_config)],
                    stdout=subprocess.DEVNULL, env={**os.environ,
                                                    "NODE_ENV": "production"}) as peer:
        wait_http(f"{issuer}/.well-known/openid-configuration", realm)
        wait_http(f"{resource}/metadata", realm)
        wait_http(f"http://127.0.0.1:{peer_port}/.well-known/openid-configuration", peer)
        print(f"Backend Services token requests, {args.requests} per round, "
              f"{args.connections} connections; both servers on core {SERVER_CORE}, "
              f"client on core {CLIENT_CORE}")
        servers = {"smartrealm": (ports[0], issuer), "oidc-provider": (peer_port,
                   f"http://127.0.0.1:{peer_port}")}
        rates: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(max(1, args.rounds // 3)):  # warm-up: JIT, caches, first key loads
            for port, base in servers.values():
                client.run(Load(port, "/token", backend_bodies(client.assertions(
                    signer.private_jwk, BACKEND_ID, f"{base}/token", 300), resource), {},
                    args.connections))
        for round_no in range(args.rounds):
            order = list(servers) if round_no % 2 == 0 else list(reversed(servers))
            for name in order:
                port, base = servers[name]
                bodies = backend_bodies(client.assertions(
                    signer.private_jwk, BACKEND_ID, f"{base}/token", args.requests), resource)
                load = os.getloadavg()[0]
                result = client.run(Load(port, "/token", bodies, {}, args.connections))
                rates[name].append(result.rate)
                print(f"  round {round_no + 1} {name:<14} {result.rate:8.1f} tokens/s "
                      f"(load average {load:.2f})")
        ours = report("smartrealm client_credentials", rates["smartrealm"])
        peers = report("node-oidc-provider client_credentials", rates["oidc-provider"])
        print(f"  ratio smartrealm / node-oidc-provider: {ours / peers:.2f}x")
        report_floor(crypto_floor(), peers)
        if not args.skip_grants:
            grants(args, client, issuer, resource, (web_id, web_secret))


def grants(args: argparse.Namespace, client: Client, issuer: str, resource: str,
           web: tuple[str, str]) -> None:
    import httpx
    port = int(urlsplit(issuer).port or 80)
    demo = ("smartrealm-demo-app", f"{issuer}/demo-app/callback", {})
    basic = "Basic " + base64.b64encode(f"{quote(web[0])}:{quote(web[1])}".encode()).decode()
    confidential = (web[0], "http://127.0.0.1:9/cb", {"Authorization": basic})
    print(f"smartrealm authorization-code exchange ({args.codes} codes per round) and "
          f"refresh ({args.requests} per round)")
    with httpx.Client(timeout=30) as http:
        for label, (client_id, redirect_uri, headers) in (("public", demo),
                                                          ("client_secret_basic",
                                                           confidential)):
            code_rates: list[float] = []
            refresh_rates: list[float] = []
            for _ in range(args.rounds):
                codes = [authorization_code(http, issuer, client_id, redirect_uri, resource)
                         for _ in range(args.codes)]
                extra = {"client_id": client_id} if not headers else {}
                bodies = [urlencode({"grant_type": "authorization_code", "code": code,
                                     "redirect_uri": redirect_uri, "code_verifier": verifier,
                                     **extra}).encode() for code, verifier in codes]
                code_rates.append(client.run(Load(port, "/token", bodies, headers,
                                                  args.connections)).rate)
                seeds = [urlencode({"grant_type": "refresh_token",
                                    "refresh_token": _first_refresh(http, issuer, body,
                                                                    headers), **extra}).encode()
                         for body in _fresh_code_bodies(http, issuer, client_id, redirect_uri,
                                                        resource, extra, args.connections)]
                chain = "grant_type=refresh_token&refresh_token={token}" + (
                    f"&client_id={quote(client_id)}" if extra else "")
                refresh_rates.append(client.run(Load(port, "/token", seeds, headers,
                                                     args.connections, chain=chain,
                                                     requests=args.requests)).rate)
            report(f"authorization_code, {label} client", code_rates)
            report(f"refresh_token, {label} client", refresh_rates)


def _fresh_code_bodies(http: Any, issuer: str, client_id: str, redirect_uri: str,
                       resource: str, extra: dict[str, str], n: int) -> list[bytes]:
    codes = [authorization_code(http, issuer, client_id, redirect_uri, resource)
             for _ in range(n)]
    return [urlencode({"grant_type": "authorization_code", "code": code,
                       "redirect_uri": redirect_uri, "code_verifier": verifier,
                       **extra}).encode() for code, verifier in codes]


def _first_refresh(http: Any, issuer: str, body: bytes, headers: dict[str, str]) -> str:
    answer = http.post(f"{issuer}/token", content=body, headers={
        **headers, "Content-Type": "application/x-www-form-urlencoded"})
    if answer.status_code != 200 or "refresh_token" not in answer.json():
        raise SystemExit(f"no refresh token: {answer.status_code} {answer.text[:300]}")
    return str(answer.json()["refresh_token"])


if __name__ == "__main__":
    main()
