"""Which servers may share one token (docs/behaviour.md; spec §10.2: the ``auth-multi-aud-token``
capability on a server "means it accepts tokens from this AS's realm").

Governing a server (it is in the realm configuration) is not enough: a multi-server token
is issued only when every server of the audience says, in its own
``{base}/.well-known/smart-configuration``, that it accepts one. The AS asks each server
(with its ordinary HTTP client) and remembers the answer for a few minutes. A server that
cannot be asked, or that does not list the capability, is an ``invalid_target`` (RFC 8707
§2). A single-server request is an ordinary SMART launch and needs no capability.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import httpx

from smartrealm.core.capabilities import MULTI_AUD_TOKEN
from smartrealm.core.defaults import CAPABILITY_CACHE_TTL as TTL
from smartrealm.core.defaults import CAPABILITY_FETCH_TIMEOUT as TIMEOUT
from smartrealm.oauth.errors import InvalidTarget
from smartrealm.oauth.realm_view import Server

log = logging.getLogger(__name__)


class MultiAudienceCheck:
    def __init__(self, http: httpx.AsyncClient, ttl: float = TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._http = http
        self._ttl = ttl
        self._clock = clock
        self._answers: dict[str, tuple[bool, float]] = {}

    async def advertises(self, server: Server) -> bool:
        """Does ``server`` list the capability? Answers it gave are cached; a server that
        could not be reached is asked again next time."""
        cached = self._answers.get(server.base_url)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        url = f"{server.base_url.rstrip('/')}/.well-known/smart-configuration"
        try:
            response = await self._http.get(url, timeout=TIMEOUT,
                                            headers={"Accept": "application/json"})
            config = response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError, RecursionError) as exc:
            log.warning("smart-configuration of %s unavailable: %s", server.base_url,
                        type(exc).__name__)
            return False
        capabilities = config.get("capabilities") if isinstance(config, dict) else None
        answer = isinstance(capabilities, list) and MULTI_AUD_TOKEN in capabilities
        self._answers[server.base_url] = (answer, self._clock() + self._ttl)
        return answer

    async def check(self, servers: Sequence[Server]) -> None:
        """Raise ``invalid_target`` naming the first server of a multi-server audience that
        does not accept a shared token."""
        if len(servers) < 2:
            return
        answers = await asyncio.gather(*(self.advertises(rs) for rs in servers))
        refused = [rs for rs, ok in zip(servers, answers, strict=True) if not ok]
        if refused:
            raise InvalidTarget(f"{refused[0].base_url} does not advertise {MULTI_AUD_TOKEN}: it "
                                "cannot share a token with other servers")
