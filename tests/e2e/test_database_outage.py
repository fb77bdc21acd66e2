"""A PostgreSQL outage under a really running realm: while the database is down every
component answers 503 with Retry-After — ``temporarily_unavailable`` at the AS's OAuth
endpoints, an OperationOutcome at the FHIR servers, ``not ready`` at /readyz — never a 500
and never after more than 10 s; once it is back, every component serves again within 10 s
by itself, without a restart."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from smartrealm.client.auth import exchange_code
from smartrealm.client.tokens import TokenSet
from smartrealm.realm.config import RealmConfig, load_config
from smartrealm.realm.runner import AUTH_SERVER, Launch, running_realm
from tests.e2e.flow import SCOPE, authorize, register_app
from tests.e2e.serve import realm_file
from tests.pg import Cluster, controllable_cluster

pytestmark = pytest.mark.e2e
OUTAGE_BUDGET = 10.0  # seconds: the longest any answer may take, and the recovery bound


@dataclass
class LiveRealm:
    realm: RealmConfig
    cluster: Cluster

    @property
    def issuer(self) -> str:
        return self.realm.auth_server.issuer

    def root(self, name: str) -> str:
        url = self.issuer if name == AUTH_SERVER else self.realm.server(name).base_url
        return url.split("/fhir")[0]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveRealm]:
    with controllable_cluster() as cluster:
        path = realm_file(tmp_path)
        path.write_text(path.read_text().replace('url = ""', f'url = "{cluster.url}"', 1))
        realm = load_config(path)
        assert realm.database_url == cluster.url
        with running_realm(realm, Launch(path, {}, realm.data_dir)) as running:
            yield LiveRealm(realm, cluster)
            assert not running.exited(), running.exited()


def _timed(http: httpx.Client, method: str, url: str, **kwargs: object) -> httpx.Response:
    started = time.monotonic()
    response = http.request(method, url, **kwargs)  # type: ignore[arg-type]
    assert time.monotonic() - started < OUTAGE_BUDGET, f"{method} {url} took too long"
    return response


def _refresh(http: httpx.Client, live: LiveRealm, tokens: TokenSet,
             client_id: str) -> httpx.Response:
    assert tokens.refresh_token is not None
    return _timed(http, "POST", f"{live.issuer}/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens.refresh_token,
        "client_id": client_id})


def _until(check: object, budget: float = OUTAGE_BUDGET) -> float:
    """Seconds until ``check()`` is true; fails past ``budget``."""
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - started < budget, "not recovered in time"
        time.sleep(0.2)
    return time.monotonic() - started


async def _tokens(live: LiveRealm) -> tuple[TokenSet, str]:
    """A real authorization (offline_access, so there is a refresh token) and the app's
    client id."""
    scope = SCOPE + " offline_access"
    async with httpx.AsyncClient(timeout=15.0) as http:
        app = await register_app(http, live.realm, scope=scope)
        request, code = await authorize(http, app, scope=scope,
                                        resources=[live.realm.server("ehr").base_url])
        tokens = await exchange_code(http, app.token_endpoint, request, code,
                                     client_id=app.client_id)
    return tokens, app.client_id


def test_an_outage_is_503_everywhere_and_service_returns_by_itself(live: LiveRealm) -> None:
    tokens, client_id = asyncio.run(_tokens(live))
    ehr = live.realm.server("ehr").base_url
    patient = f"{ehr}/Patient/{tokens.patient}"
    bearer = {"Authorization": f"Bearer {tokens.access_token}"}
    with httpx.Client(timeout=30.0) as http:
        assert http.get(patient, headers=bearer).status_code == 200

        live.cluster.stop()
        statuses: list[int] = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            read = _timed(http, "GET", patient, headers=bearer)
            assert read.status_code == 503, read.text
            assert read.json()["resourceType"] == "OperationOutcome"
            assert read.json()["issue"][0]["code"] == "transient"
            assert read.headers["retry-after"] == "5"
            search = _timed(http, "GET", f"{ehr}/Observation",
                            params={"patient": tokens.patient}, headers=bearer)
            assert search.status_code == 503, search.text
            assert search.json()["issue"][0]["code"] == "transient"
            token = _refresh(http, live, tokens, client_id)
            assert token.status_code == 503, token.text
            assert token.json()["error"] == "temporarily_unavailable"
            assert token.headers["retry-after"] == "5"
            assert token.headers["cache-control"] == "no-store"
            assert "127.0.0.1" not in token.text and "postgres" not in token.text
            for name in (AUTH_SERVER, "ehr"):
                ready = _timed(http, "GET", f"{live.root(name)}/readyz")
                assert ready.status_code == 503
                assert "database" in ready.json()["problems"]
            page = _timed(http, "GET", f"{live.issuer}/manage",
                          headers={"Accept": "text/html"})
            assert page.status_code == 503 and "try again" in page.text
            statuses += [read.status_code, search.status_code, token.status_code]
        assert statuses and set(statuses) == {503}

        live.cluster.start()
        _until(lambda: http.get(patient, headers=bearer).status_code == 200)
        _until(lambda: all(http.get(f"{live.root(n)}/readyz").status_code == 200
                           for n in (AUTH_SERVER, "ehr")))
        refreshed = _refresh(http, live, tokens, client_id)
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["access_token"]


def test_under_load_an_outage_gives_only_503s_and_full_service_after(live: LiveRealm) -> None:
    """Four clients read and search at the EHR and ask the AS for tokens the whole time;
    PostgreSQL stops for 3 s and comes back. Every answer is 200 (before and after) or 503
    (during) — never a 500, never slower than 10 s — and within 10 s of the restart every
    client is served again."""
    tokens, client_id = asyncio.run(_tokens(live))
    ehr = live.realm.server("ehr").base_url
    bearer = {"Authorization": f"Bearer {tokens.access_token}"}
    stop = threading.Event()
    seen: Counter[int] = Counter()
    slow: list[float] = []
    last_ok: dict[int, float] = {}

    def client(number: int) -> None:
        with httpx.Client(timeout=30.0) as http:
            while not stop.is_set():
                started = time.monotonic()
                if number % 2:
                    response = http.get(f"{ehr}/Observation", headers=bearer,
                                        params={"patient": tokens.patient, "_count": "5"})
                else:
                    response = http.post(f"{live.issuer}/token", data={
                        "grant_type": "client_credentials", "client_id": client_id})
                took = time.monotonic() - started
                if took > OUTAGE_BUDGET:
                    slow.append(took)
                seen[response.status_code] += 1
                if response.status_code in (200, 400, 401):
                    last_ok[number] = time.monotonic()

    workers = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.5)
        live.cluster.stop()
        time.sleep(3)
        during = dict(seen)
        live.cluster.start()
        restarted = time.monotonic()
        _until(lambda: len(last_ok) == 4 and min(last_ok.values()) > restarted)
        time.sleep(1)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert seen[500] == 0 and not slow, (seen, slow)
    assert set(seen) <= {200, 400, 401, 503}, seen  # 400/401: an unauthorised client
    assert during.get(503, 0) > 0, during
