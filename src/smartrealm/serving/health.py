"""``GET /healthz`` and ``GET /readyz`` at the root of a component's listener, whatever the
path its public URL has, and the drain on SIGTERM.

``/healthz`` answers 200 while the process serves at all (a liveness probe: restart it when
this fails). ``/metrics`` is the Prometheus text (serving/metrics.py), to the configured
networks only. ``/readyz`` answers 200 only when every readiness check passes — the database
answers, the signing keys are loaded — and 503 otherwise, naming the failed check; a load
balancer sends traffic only to ready instances. Neither answer carries more than the check
names and a short reason: no URL, no credential, no exception text.

On SIGTERM an instance first turns not-ready for ``drain_seconds`` while it keeps serving,
so the load balancer's health check takes it out of rotation; then uvicorn's own shutdown
closes the listener and finishes the requests in flight. A second SIGTERM (or SIGINT)
stops at once."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartrealm.core.addresses import IPNetwork, literal_address
from smartrealm.core.defaults import OUTAGE_RETRY_AFTER, READY_CHECK_TIMEOUT
from smartrealm.serving.metrics import exposition

# A readiness check: None when fine, else a short reason (no secrets, no exception text).
ReadyCheck = Callable[[], str | None]

HEALTH_PATHS = ("/healthz", "/readyz", "/metrics")


@dataclass
class Readiness:
    """What /readyz asks, and whether the instance is draining (SIGTERM received)."""

    checks: Mapping[str, ReadyCheck] = field(default_factory=dict)
    draining: bool = False
    timeout: float = READY_CHECK_TIMEOUT

    async def problems(self) -> dict[str, str]:
        """{check: reason} of every check that failed; empty when ready."""
        found = {"shutdown": "draining"} if self.draining else {}
        results = await asyncio.gather(*(self._run(check) for check in self.checks.values()))
        found.update({name: reason for name, reason in zip(self.checks, results, strict=True)
                      if reason is not None})
        return found

    async def _run(self, check: ReadyCheck) -> str | None:
        try:
            return await asyncio.wait_for(run_in_threadpool(_guarded, check), self.timeout)
        except TimeoutError:
            return f"no answer within {self.timeout:g}s"


def _guarded(check: ReadyCheck) -> str | None:
    try:
        return check()
    except Exception as exc:  # a failing check means not ready; never a 500
        return type(exc).__name__


class HealthFront:
    """ASGI middleware in front of a whole component."""

    def __init__(self, app: ASGIApp, readiness: Readiness, drain_seconds: int = 0,
                 metrics_networks: Sequence[IPNetwork] = ()) -> None:
        self.app = app
        self.readiness = readiness
        self.drain_seconds = drain_seconds
        self.metrics_networks = tuple(metrics_networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in HEALTH_PATHS:
            await self._answer(scope, send)
            return
        if scope["type"] == "lifespan" and self.drain_seconds > 0:
            receive = self._on_startup(receive)
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _send_json(send, 405, {"status": "method not allowed"}, scope,
                             [(b"allow", b"GET, HEAD")])
            return
        if scope["path"] == "/healthz":
            await _send_json(send, 200, {"status": "ok"}, scope)
            return
        if scope["path"] == "/metrics":
            await self._metrics(scope, send)
            return
        problems = await self.readiness.problems()
        if problems:
            await _send_json(send, 503, {"status": "not ready", "problems": problems}, scope,
                             [(b"retry-after", str(OUTAGE_RETRY_AFTER).encode())])
        else:
            await _send_json(send, 200, {"status": "ready"}, scope)

    async def _metrics(self, scope: Scope, send: Send) -> None:
        """Prometheus text, only to a peer in ``metrics_networks`` (the direct peer, or the
        forwarded one when it came through a trusted proxy)."""
        client = scope.get("client")
        address = literal_address(str(client[0])) if client else None
        if address is None or not any(address in n for n in self.metrics_networks):
            await _send_json(send, 403, {"status": "forbidden"}, scope)
            return
        body, content_type = exposition()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", content_type.encode()), (b"cache-control", b"no-store"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body",
                    "body": b"" if scope["method"] == "HEAD" else body})

    def _on_startup(self, receive: Receive) -> Receive:
        """Install the drain once uvicorn has installed its own signal handlers (they are in
        place before the lifespan starts) — so the drain runs before uvicorn's shutdown."""
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                install_drain(self.readiness, self.drain_seconds,
                              asyncio.get_running_loop())
            return message
        return wrapped


def install_drain(readiness: Readiness, seconds: int,
                  loop: asyncio.AbstractEventLoop) -> None:
    """On the first SIGTERM: not ready at once, uvicorn's shutdown ``seconds`` later."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals reach the main thread only; uvicorn's default applies
    shutdown = signal.getsignal(signal.SIGTERM)
    if not callable(shutdown):
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if readiness.draining:  # a second SIGTERM: stop now
            shutdown(signum, frame)
            return
        readiness.draining = True
        loop.call_soon_threadsafe(loop.call_later, seconds, shutdown, signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


async def _send_json(send: Send, status: int, body: dict[str, Any], scope: Scope,
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
               (b"content-length", str(len(payload)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body",
                "body": b"" if scope["method"] == "HEAD" else payload})
