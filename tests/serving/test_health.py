"""/healthz and /readyz in front of a component (serving/health.py): at the listener's root
whatever the app's own paths, 503 naming each failed check, a check that raises or hangs
counts as failed (never a 500 or a hung probe), nothing but GET and HEAD."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from smartrealm.serving.health import HealthFront, Readiness, ReadyCheck


def _app() -> Starlette:
    async def hello(_request: object) -> PlainTextResponse:
        return PlainTextResponse("app")

    return Starlette(routes=[Route("/fhir/metadata", hello), Route("/healthz-not", hello)])


async def _get(front: HealthFront, path: str, method: str = "GET") -> httpx.Response:
    transport = httpx.ASGITransport(app=front)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        return await client.request(method, path)


def _front(checks: dict[str, ReadyCheck], timeout: float = 2.0) -> HealthFront:
    return HealthFront(_app(), Readiness(checks, timeout=timeout))


async def test_healthz_answers_while_the_process_serves_even_when_not_ready() -> None:
    response = await _get(_front({"database": lambda: "database unavailable"}), "/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


async def test_readyz_is_200_when_every_check_passes() -> None:
    response = await _get(_front({"database": lambda: None, "keys": lambda: None}), "/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ready"}


async def test_readyz_is_503_naming_the_failed_checks_only() -> None:
    front = _front({"database": lambda: "database unavailable (OperationalError)",
                    "signing_keys": lambda: None})
    response = await _get(front, "/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"status": "not ready",
                               "problems": {"database": "database unavailable (OperationalError)"}}


async def test_a_check_that_raises_is_a_failed_check_named_by_its_type_only() -> None:
    def broken() -> str | None:
        raise RuntimeError("postgresql://admin:s3cret@db/realm refused")

    response = await _get(_front({"database": broken}), "/readyz")
    assert response.status_code == 503
    assert response.json()["problems"] == {"database": "RuntimeError"}
    assert "s3cret" not in response.text


async def test_a_check_that_hangs_fails_after_the_timeout() -> None:
    release = threading.Event()

    def hangs() -> str | None:
        release.wait(5)
        return None

    started = time.monotonic()
    try:
        response = await _get(_front({"database": hangs}, timeout=0.2), "/readyz")
    finally:
        release.set()
    assert response.status_code == 503
    assert response.json()["problems"] == {"database": "no answer within 0.2s"}
    assert time.monotonic() - started < 4


async def test_a_draining_instance_is_not_ready() -> None:
    front = _front({"database": lambda: None})
    front.readiness.draining = True
    response = await _get(front, "/readyz")
    assert response.status_code == 503
    assert response.json()["problems"] == {"shutdown": "draining"}
    assert (await _get(front, "/fhir/metadata")).text == "app"  # still serving


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_head_has_no_body_and_other_methods_are_405(path: str) -> None:
    front = _front({})
    head = await _get(front, path, "HEAD")
    assert head.status_code == 200 and head.content == b""
    post = await _get(front, path, "POST")
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"


async def test_other_paths_reach_the_app() -> None:
    front = _front({"database": lambda: "down"})
    assert (await _get(front, "/fhir/metadata")).text == "app"
    assert (await _get(front, "/healthz-not")).text == "app"
