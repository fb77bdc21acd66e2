"""Server-side sessions of the demo app: the browser only holds a random cookie; the
pending authorization request (state, PKCE verifier) and the tokens stay on the server
(spec §3.2 / §7: an app keeps its tokens away from the page and the URL).

In memory: the app runs inside one process (the AS's), and a restart simply asks the user
to connect again. Keys are stored hashed, sessions expire, and the store is bounded."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from smartrealm.client import AuthorizationRequest, TokenSet
from smartrealm.core.defaults import DEMO_MAX_SESSIONS as MAX_SESSIONS
from smartrealm.core.defaults import DEMO_SESSION_LIFETIME as SESSION_LIFETIME


@dataclass(frozen=True)
class Connection:
    """One server of the grant, as discovered."""

    base_url: str
    role: str  # "ehr" or "imaging": which column of the record page it fills
    name: str  # a readable label


@dataclass
class DemoSession:
    pending: AuthorizationRequest | None = None
    launch_kind: str = "standalone"  # or "ehr" (EHR launch, spec §6.1)
    servers: tuple[Connection, ...] = ()
    tokens: TokenSet | None = None
    token_endpoint: str = ""


class SessionStore:
    def __init__(self, clock: Callable[[], float] = time.time,
                 lifetime: int = SESSION_LIFETIME, capacity: int = MAX_SESSIONS) -> None:
        self._clock, self.lifetime, self._capacity = clock, lifetime, capacity
        self._items: OrderedDict[str, tuple[float, DemoSession]] = OrderedDict()

    def create(self) -> tuple[str, DemoSession]:
        """A new session; returns the cookie value (kept only as its hash here)."""
        self._purge()
        while len(self._items) >= self._capacity:
            self._items.popitem(last=False)  # the oldest goes first
        key = secrets.token_urlsafe(32)
        session = DemoSession()
        self._items[_hash(key)] = (self._clock() + self.lifetime, session)
        return key, session

    def get(self, key: str | None) -> DemoSession | None:
        if not key:
            return None
        found = self._items.get(_hash(key))
        if found is None or found[0] <= self._clock():
            return None
        return found[1]

    def delete(self, key: str | None) -> None:
        if key:
            self._items.pop(_hash(key), None)

    def __len__(self) -> int:
        return len(self._items)

    def _purge(self) -> None:
        now = self._clock()
        for hashed in [h for h, (expires, _) in self._items.items() if expires <= now]:
            del self._items[hashed]


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
