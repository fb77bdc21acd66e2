"""Outbound requests to URLs a client chose (its ``jwks_uri``), guarded against server-side
request forgery: the connection goes only to an address the realm's ``AddressPolicy``
allows (core/addresses.py), checked on the address actually connected to.

The transport resolves the host name itself, refuses the request if *any* address the name
resolves to is forbidden (a name mixing public and private answers is a rebinding attempt,
not an accident), and then connects to the checked address — the URL is rewritten to the
IP, the ``Host`` header and the TLS server name (``sni_hostname``) keep the original name,
so the certificate is still verified for it. There is no second resolution between the
check and the connection for DNS to answer differently. Connections are not kept alive, so
a connection opened (and its certificate verified) for one name is never reused for
another name on the same address. Each request, redirects included if a caller follows
them, passes through here and is checked again; environment proxies are not used (the
proxy's address would be the one checked).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable

import httpx

from smartrealm.core.addresses import AddressPolicy, IPAddress, literal_address

# host, port → the addresses the name resolves to
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


class ForbiddenAddress(httpx.ConnectError):
    """The host is, or resolves to, an address the realm does not fetch from."""


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        address = literal_address(str(info[4][0]).split("%", 1)[0])  # drop a zone index
        if address is not None and address not in found:
            found.append(address)
    return found


class PolicyTransport(httpx.AsyncBaseTransport):
    def __init__(self, policy: AddressPolicy, *, verify: ssl.SSLContext | bool = True,
                 resolver: Resolver = system_resolver,
                 inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._policy = policy
        self._resolve = resolver
        self._inner = inner or httpx.AsyncHTTPTransport(
            verify=verify, trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host, port = request.url.host, request.url.port or (
            443 if request.url.scheme == "https" else 80)
        addresses = await self._addresses(request, host, port)
        error: httpx.ConnectError | None = None
        for address in addresses:  # in resolver order, each one already checked
            try:
                return await self._inner.handle_async_request(
                    _to_address(request, host, address))
            except httpx.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    async def _addresses(self, request: httpx.Request, host: str,
                         port: int) -> list[IPAddress]:
        literal = literal_address(host)
        try:
            addresses = [literal] if literal is not None else await self._resolve(host, port)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from None
        if not addresses:
            raise httpx.ConnectError(f"{host} has no address", request=request)
        for address in addresses:
            reason = self._policy.refusal(address)
            if reason is not None:
                raise ForbiddenAddress(f"{host} resolves to {address}, a {reason} address",
                                       request=request)
        return addresses

    async def aclose(self) -> None:
        await self._inner.aclose()


def _to_address(request: httpx.Request, host: str, address: IPAddress) -> httpx.Request:
    """The same request sent to ``address``: Host header and TLS name stay ``host``."""
    extensions = dict(request.extensions)
    if request.url.scheme == "https":
        extensions["sni_hostname"] = host
    return httpx.Request(request.method, request.url.copy_with(host=str(address)),
                         headers=request.headers, stream=request.stream,
                         extensions=extensions)


def policy_client(policy: AddressPolicy, verify: ssl.SSLContext | bool = True,
                  resolver: Resolver = system_resolver) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that only ever connects where ``policy`` allows."""
    return httpx.AsyncClient(transport=PolicyTransport(policy, verify=verify, resolver=resolver),
                             trust_env=False, follow_redirects=False)
