"""Can one access token be used at every server? (seed, "Discovery"; spec §10.2.1)

All servers must name the same ``authorization_endpoint`` and ``token_endpoint`` (the same
AS governs them) and every one must advertise ``auth-multi-aud-token`` (it accepts being one
audience of a multi-audience token from that AS). URLs are compared normalised (scheme and
host case, trailing slash), the same way the realm compares audiences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from smartrealm.client._http import normalize_url
from smartrealm.client.discovery import SmartConfiguration
from smartrealm.client.errors import TokenReuseNotPossible
from smartrealm.core.capabilities import MULTI_AUD_TOKEN

MULTI_AUD_CAPABILITY = MULTI_AUD_TOKEN  # the name apps import


@dataclass(frozen=True)
class ReuseDecision:
    possible: bool
    reasons: tuple[str, ...]
    # The shared endpoints when ``possible``; None otherwise.
    authorization_endpoint: str | None
    token_endpoint: str | None

    def raise_if_impossible(self) -> None:
        if not self.possible:
            raise TokenReuseNotPossible(list(self.reasons))


def check_token_reuse(configs: Sequence[SmartConfiguration]) -> ReuseDecision:
    """Decide whether one token from one authorization request can serve all ``configs``.
    The first configuration is the reference the others are compared with."""
    if not configs:
        return ReuseDecision(False, ("no servers given",), None, None)
    first = configs[0]
    reasons: list[str] = []
    for config in configs:
        reasons += _endpoint_reasons(first, config)
        if MULTI_AUD_CAPABILITY not in config.capabilities:
            reasons.append(
                f"{config.base_url}: does not advertise the {MULTI_AUD_CAPABILITY} capability"
            )
    if reasons:
        return ReuseDecision(False, tuple(reasons), None, None)
    return ReuseDecision(True, (), first.authorization_endpoint, first.token_endpoint)


def _endpoint_reasons(first: SmartConfiguration, config: SmartConfiguration) -> list[str]:
    reasons = []
    for field in ("authorization_endpoint", "token_endpoint"):
        mine, theirs = getattr(config, field), getattr(first, field)
        if normalize_url(mine) != normalize_url(theirs):
            reasons.append(
                f"{config.base_url}: {field} {mine} differs from {theirs} of {first.base_url}"
            )
    return reasons
