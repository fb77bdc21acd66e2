"""The loopback redirect receiver of a native app (RFC 8252 §7.3): a one-shot HTTP server
on 127.0.0.1 that waits for the authorization server's redirect to ``/callback``.

Only the request line matters: the callback is a GET whose query carries ``code`` and
``state`` (or ``error``). Other paths (a browser's ``/favicon.ico``) get 404 and are
ignored. The page shown to the user says nothing about the outcome; the terminal does."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from smartrealm.core.defaults import LOOPBACK_MAX_REQUEST_LINE as MAX_REQUEST_LINE

CALLBACK_PATH = "/callback"
HOST = "127.0.0.1"
PAGE = (b"<!doctype html><meta charset='utf-8'><title>smartrealm app</title>"
        b"<p>The authorization server answered. You can close this window and return to "
        b"the terminal.</p>")


class LoopbackReceiver:
    """Use as ``async with LoopbackReceiver(port) as rx:`` then ``await rx.wait(timeout)``."""

    def __init__(self, port: int = 0) -> None:
        self.requested_port = port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._callbacks: asyncio.Queue[str] = asyncio.Queue()

    @property
    def redirect_uri(self) -> str:
        return f"http://{HOST}:{self.port}{CALLBACK_PATH}"

    async def __aenter__(self) -> LoopbackReceiver:
        # Port 0: the OS picks a free ephemeral port (RFC 8252 §7.3 recommends this).
        self._server = await asyncio.start_server(self._handle, HOST, self.requested_port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait(self, timeout: float) -> str:
        """The next callback URL (absolute); ``TimeoutError`` after ``timeout`` seconds."""
        return await asyncio.wait_for(self._callbacks.get(), timeout)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            await asyncio.wait_for(_skip_headers(reader), 10)
            target = _callback_target(line)
            if target is None:
                await _respond(writer, b"404 Not Found", b"not found")
                return
            await _respond(writer, b"200 OK", PAGE)
            self._callbacks.put_nowait(f"http://{HOST}:{self.port}{target}")
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _skip_headers(reader: asyncio.StreamReader) -> None:
    """Read the header block (unread input would make closing the socket reset it)."""
    for _ in range(200):
        if (await reader.readline()).strip() == b"":
            return


def _callback_target(line: bytes) -> str | None:
    """``/callback?…`` from ``GET /callback?… HTTP/1.1``, else None."""
    if len(line) > MAX_REQUEST_LINE:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or parts[0] != "GET" or not parts[2].startswith("HTTP/"):
        return None
    if urlsplit(parts[1]).path != CALLBACK_PATH:
        return None
    return parts[1]


async def _respond(writer: asyncio.StreamWriter, status: bytes, body: bytes) -> None:
    writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html; charset=utf-8\r\n"
                 b"Cache-Control: no-store\r\nConnection: close\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
