"""Two instances of the AS and two of the EHR behind HAProxy, sharing one PostgreSQL database
(tests/e2e/balanced.py, the topology of deploy/), behave as one realm: the seed's
multi-server flow goes through the balancer with consecutive requests on different
instances; a code replayed on the other instance is refused and its grant revoked; a
refresh token reused on the other instance is refused and its family revoked; sign-in
failures lock the user across instances; a key rotated through one instance signs at
both within 30 s and both EHR instances accept it; an AS instance killed with SIGKILL under
load leaves the flow completing through the other."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from smartrealm.client.auth import AuthorizationRequest, exchange_code
from smartrealm.devtools.useragent import parse_page
from tests.e2e.balanced import Balanced, balanced_realm
from tests.e2e.flow import REDIRECT_URI, SCOPE, App, authorize, register_app

pytestmark = pytest.mark.e2e
OFFLINE = SCOPE + " offline_access"


@pytest.fixture
def balanced(tmp_path: Path, pg_url: str) -> Iterator[Balanced]:
    with balanced_realm(tmp_path, pg_url) as setup:
        yield setup


def _run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _app_and_code(http: httpx.AsyncClient, setup: Balanced
                        ) -> tuple[App, AuthorizationRequest, str]:
    realm = setup.realm
    app = await register_app(http, realm, scope=OFFLINE)
    request, code = await authorize(http, app, scope=OFFLINE,
                                    resources=[realm.server("ehr").base_url,
                                               realm.server("imaging").base_url])
    return app, request, code


def _kid(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def _token(http: httpx.Client, setup: Balanced, data: dict[str, str]) -> httpx.Response:
    return http.post(f"{setup.realm.auth_server.issuer}/token", data=data)


def test_the_flow_and_single_use_across_instances(balanced: Balanced) -> None:
    setup = balanced
    issuer = setup.realm.auth_server.issuer
    with httpx.Client(timeout=30) as http:
        served = Counter(http.get(f"{issuer}/.well-known/openid-configuration")
                         .headers["x-served-by"] for _ in range(6))
        assert set(served) == {"auth_server_1", "auth_server_2"}, served
        ehr = setup.realm.server("ehr").base_url
        assert {http.get(f"{ehr}/metadata").headers["x-served-by"]
                for _ in range(4)} == {"ehr_1", "ehr_2"}

    async def flow() -> tuple[App, AuthorizationRequest, str]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await _app_and_code(client, setup)

    # The whole flow (registration, pages, consent) alternates between the AS instances.
    app, request, code = _run(flow())  # type: ignore[misc]
    form = {"grant_type": "authorization_code", "code": code, "client_id": app.client_id,
            "redirect_uri": REDIRECT_URI, "code_verifier": request.code_verifier}
    with httpx.Client(timeout=30) as http:
        first = _token(http, setup, form)
        assert first.status_code == 200, first.text
        tokens = first.json()
        replay = _token(http, setup, form)
        assert first.headers["x-served-by"] != replay.headers["x-served-by"]
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        # RFC 6749 §4.1.2: the replay revoked what the code had granted.
        revoked = _token(http, setup, {"grant_type": "refresh_token", "client_id": app.client_id,
                                       "refresh_token": tokens["refresh_token"]})
        assert revoked.status_code == 400 and revoked.json()["error"] == "invalid_grant"
        # Both EHR instances serve the (multi-server) access token of a fresh flow.
        app2, request2, code2 = _run(flow())  # type: ignore[misc]
        fresh = _token(http, setup, {**form, "code": code2, "client_id": app2.client_id,
                                     "code_verifier": request2.code_verifier})
        assert fresh.status_code == 200, fresh.text
        body = fresh.json()
        patient = next(d["patient"] for d in body["authorization_details"]
                       if d["locations"] == [ehr] and "patient" in d) if any(
            "patient" in d for d in body["authorization_details"]) else body["patient"]
        for instance in setup.of("ehr"):
            read = http.get(f"{instance.url}{_path(ehr)}/Patient/{patient}",
                            headers={"Authorization": f"Bearer {body['access_token']}"})
            assert read.status_code == 200, (instance.name, read.text)
        # A refresh token used on one instance and reused on the other: refused, family
        # revoked (the rotated token no longer works either).
        rotated = _token(http, setup, {"grant_type": "refresh_token",
                                       "client_id": app2.client_id,
                                       "refresh_token": body["refresh_token"]})
        assert rotated.status_code == 200, rotated.text
        reuse = _token(http, setup, {"grant_type": "refresh_token", "client_id": app2.client_id,
                                     "refresh_token": body["refresh_token"]})
        assert rotated.headers["x-served-by"] != reuse.headers["x-served-by"]
        assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
        family = _token(http, setup, {"grant_type": "refresh_token",
                                      "client_id": app2.client_id,
                                      "refresh_token": rotated.json()["refresh_token"]})
        assert family.status_code == 400 and family.json()["error"] == "invalid_grant"


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3] if url.count("/") >= 3 else ""


def test_sign_in_failures_lock_the_user_on_every_instance(balanced: Balanced) -> None:
    setup = balanced

    async def attempt() -> list[tuple[int, str]]:
        async with httpx.AsyncClient(timeout=30) as client:
            app = await register_app(client, setup.realm)
            request = AuthorizationRequest.create(
                authorization_endpoint=app.authorization_endpoint, client_id=app.client_id,
                redirect_uri=REDIRECT_URI, scope=SCOPE,
                resources=[setup.realm.server("ehr").base_url])
            page = await client.get(request.url, follow_redirects=True)
            seen = []
            for password in ["wrong-1", "wrong-2", "wrong-3", "wrong-4", "wrong-5",
                             "patient-demo"]:
                forms, _ = parse_page(page.text)
                form = next(f for f in forms if f.method == "post")
                data = {**dict(form.fields), "username": "patient", "password": password}
                page = await client.post(urljoin(str(page.url), form.action or str(page.url)),
                                         data=data, follow_redirects=False)
                seen.append((page.status_code, page.headers.get("x-served-by", "")))
            return seen

    seen = _run(attempt())
    statuses = [s for s, _ in seen]  # type: ignore[union-attr]
    servers = {s for _, s in seen}  # type: ignore[union-attr]
    assert servers == {"auth_server_1", "auth_server_2"}, seen
    assert statuses[:4] == [401] * 4 and statuses[4] == 429, seen  # 5 failures, 2 instances
    assert statuses[-1] == 429 and len(statuses) == 6, seen  # the right password: still locked


def test_a_rotated_key_signs_everywhere_and_every_ehr_accepts_it(balanced: Balanced) -> None:
    setup = balanced

    async def tokens() -> tuple[App, dict[str, object]]:
        async with httpx.AsyncClient(timeout=30) as client:
            app, request, code = await _app_and_code(client, setup)
            issued = await exchange_code(client, app.token_endpoint, request, code,
                                         client_id=app.client_id)
            return app, issued.raw

    app, body = _run(tokens())  # type: ignore[misc]
    old_kid = _kid(str(body["access_token"]))
    rotated = setup.cli("keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    new_kid = rotated.stdout.split("new signing key", 1)[1].split()[0]
    refresh = str(body["refresh_token"])
    ehr = setup.realm.server("ehr").base_url
    signed_by: dict[str, str] = {}
    deadline = time.monotonic() + 60  # 20 s pre-publication, then 30 s to reach everyone
    with httpx.Client(timeout=30) as http:
        while len(signed_by) < 2 and time.monotonic() < deadline:
            response = _token(http, setup, {"grant_type": "refresh_token",
                                            "client_id": app.client_id,
                                            "refresh_token": refresh})
            assert response.status_code == 200, response.text
            refresh = response.json()["refresh_token"]
            access = response.json()["access_token"]
            if _kid(access) == new_kid:
                signed_by[response.headers["x-served-by"]] = access
            time.sleep(0.5)
        assert set(signed_by) == {"auth_server_1", "auth_server_2"}, (old_kid, signed_by)
        for access in signed_by.values():
            for instance in setup.of("ehr"):
                check = http.get(f"{instance.url}{_path(ehr)}/Patient",
                                 params={"_count": "1"},
                                 headers={"Authorization": f"Bearer {access}"})
                assert check.status_code == 200, (instance.name, check.text)


def test_an_instance_killed_under_load_leaves_the_flow_working(balanced: Balanced) -> None:
    setup = balanced
    issuer = setup.realm.auth_server.issuer
    stop = threading.Event()
    outcomes: Counter[str] = Counter()

    def load() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                try:
                    status = http.get(f"{issuer}/jwks").status_code
                    outcomes[str(status)] += 1
                except httpx.HTTPError as exc:
                    outcomes[type(exc).__name__] += 1

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.0)
        victim = setup.instances["auth_server_1"].process
        assert victim is not None
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)

        async def flow() -> str:
            async with httpx.AsyncClient(timeout=30) as client:
                app, request, code = await _app_and_code(client, setup)
                issued = await exchange_code(client, app.token_endpoint, request, code,
                                             client_id=app.client_id)
                return issued.access_token

        assert _run(flow())
        time.sleep(1.0)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=15)
    assert outcomes["200"] > 50, outcomes
    failed = sum(n for k, n in outcomes.items() if k != "200")
    assert failed <= 8, outcomes  # at most the requests in flight at the kill
    with httpx.Client(timeout=10) as http:
        after = {http.get(f"{issuer}/jwks").headers["x-served-by"] for _ in range(6)}
    assert after == {"auth_server_2"}


def test_a_sigterm_under_load_loses_no_request(balanced: Balanced) -> None:
    """SIGTERM to one AS instance while four clients send through HAProxy: it turns
    not-ready, HAProxy takes it out of rotation within its drain, it finishes what it has in
    flight and exits — and every request of every client is answered (no error, no 5xx)."""
    setup = balanced
    issuer = setup.realm.auth_server.issuer
    stop = threading.Event()
    outcomes: Counter[str] = Counter()
    served_by: Counter[str] = Counter()

    def load(number: int) -> None:
        with httpx.Client(timeout=15) as http:
            while not stop.is_set():
                try:
                    if number % 2:
                        response = http.get(f"{issuer}/.well-known/openid-configuration")
                    else:
                        response = http.post(f"{issuer}/token", data={
                            "grant_type": "client_credentials", "client_id": "nobody"})
                    outcomes["answered" if response.status_code < 500
                             else str(response.status_code)] += 1
                    served_by[response.headers.get("x-served-by", "?")] += 1
                except httpx.HTTPError as exc:
                    outcomes[type(exc).__name__] += 1

    workers = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.0)
        victim = setup.instances["auth_server_1"].process
        assert victim is not None
        victim.send_signal(signal.SIGTERM)
        victim.wait(timeout=20)
        time.sleep(1.0)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=20)
    assert set(outcomes) == {"answered"}, outcomes
    assert outcomes["answered"] > 100 and served_by["auth_server_1"] > 10, (outcomes, served_by)
