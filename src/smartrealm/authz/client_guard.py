"""Failed client authentication, limited per client_id and caller address (the
``FailureThrottle`` of oauth/client_auth.py over the lockout rules of lockout.py).

Counted in the realm database (table ``as_client_auth_failures``), so the limit holds across
restarts and for every AS process sharing it. ``CLIENT_AUTH_POLICY`` (lockout.py): 10 wrong
secrets within 5 minutes lock that client_id *from that address* for 5 minutes.

Why per client_id and address rather than per client_id alone: client_ids are public (they
travel in every authorization URL), so a lock per client_id would let anyone shut a
confidential client out with a few wrong secrets. Keyed with the address, an attacker locks
out only itself; IPv6 callers are keyed by their /64, the block one subscriber usually
holds, so cycling through addresses inside it gains nothing. Behind a reverse proxy the
address is the one uvicorn reports (its ``forwarded_allow_ips`` rules).
"""

from __future__ import annotations

import functools
import ipaddress

from starlette.requests import Request

from smartrealm.authz.flow import AuthzContext
from smartrealm.authz.lockout import LoginFailureStore, LoginPolicy
from smartrealm.oauth.client_auth import ClientAuth
from smartrealm.oauth.store import Client, ClientStore


def caller_address(request: Request) -> str:
    """The caller's address as the throttle keys it: IPv4 as is, IPv6 by its /64."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an IP (a test transport, a Unix socket): keyed as given
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class AddressThrottle:
    """Failures of client_ids presented from one address (one request's view)."""

    def __init__(self, store: LoginFailureStore, policy: LoginPolicy, request: Request,
                 now: int) -> None:
        self._store, self._policy, self._request, self._now = store, policy, request, now
        self._seen_failures = True  # until retry_after has looked: clear on success

    @functools.cached_property
    def _address(self) -> str:
        # Worked out on first use: a request authenticated by an assertion never needs it.
        return caller_address(self._request)

    def _key(self, client_id: str) -> str:
        return f"{client_id}\x00{self._address}"  # the store keeps only its SHA-256

    def retry_after(self, client_id: str) -> int:
        count = self._store.count(self._key(client_id), self._now)
        self._seen_failures = count.failures > 0 or count.locked_until > 0
        return max(0, count.locked_until - self._now)

    def failed(self, client_id: str) -> int:
        count = self._store.record_failure(self._key(client_id), self._now, self._policy)
        return max(0, count.locked_until - self._now)

    def succeeded(self, client_id: str) -> None:
        if self._seen_failures:  # a write only when there is something to forget
            self._store.clear(self._key(client_id))


class RequestClients:
    """One request's view of the client store: a client looked up twice in one request (the
    ``jwks_uri`` prefetch, then authentication) is read once. Made per request and never
    shared, so the next request sees a client changed or removed meanwhile."""

    def __init__(self, store: ClientStore) -> None:
        self._store = store
        self._seen: dict[str, Client | None] = {}

    def get(self, client_id: str) -> Client | None:
        if client_id not in self._seen:
            self._seen[client_id] = self._store.get(client_id)
        return self._seen[client_id]

    def put(self, client: Client) -> None:
        self._seen.pop(client.client_id, None)
        self._store.put(client)

    def all(self) -> list[Client]:
        return self._store.all()

    def delete(self, client_id: str) -> bool:
        self._seen.pop(client_id, None)
        return self._store.delete(client_id)

    def replace_secret_hash(self, client_id: str, old: str, new: str) -> bool:
        self._seen.pop(client_id, None)
        return self._store.replace_secret_hash(client_id, old, new)


def client_auth(ctx: AuthzContext, request: Request,
                clients: ClientStore | None = None) -> ClientAuth:
    """Client authentication for one request of the token, introspection or revocation
    endpoint (``clients``: that request's ``RequestClients``)."""
    throttle = AddressThrottle(ctx.stores.client_auth_failures, ctx.client_auth_policy,
                               request, ctx.now())
    return ClientAuth(clients or ctx.stores.clients, ctx.client_secrets, throttle)
