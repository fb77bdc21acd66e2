"""Purging what the AS no longer needs: expired codes, interactions, replay-cache entries,
expired or revoked access-token registry rows and refresh tokens, and signing keys no valid
token can name (docs/behaviour.md: expired rows are purged).

Every store that has a ``purge(now) -> int`` method takes part, found by walking ``Stores``
(nested groups such as ``Stores.ehr`` included), so a new store joins by defining one. The AS
runs the purge at start-up and then every ``PURGE_INTERVAL`` seconds; `smartrealm purge`
runs it once, offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, runtime_checkable

from smartrealm.authz.records import Stores
from smartrealm.core.defaults import PURGE_INTERVAL
from smartrealm.oauth.key_rotation import RotatingKeyRing
from smartrealm.oauth.keys import KeyRing

log = logging.getLogger(__name__)
KeyPruner = Callable[[int], list[str]]


@runtime_checkable
class Purgeable(Protocol):
    def purge(self, now: int) -> int: ...


def purgeable_stores(group: Any, prefix: str = "") -> dict[str, Purgeable]:
    """The stores of ``group`` (a dataclass of stores) that can purge, by dotted name."""
    found: dict[str, Purgeable] = {}
    for f in dataclasses.fields(group):
        value = getattr(group, f.name)
        if isinstance(value, Purgeable):
            found[prefix + f.name] = value
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            found.update(purgeable_stores(value, f"{prefix}{f.name}."))
    return found


def key_pruner(keys: KeyRing) -> KeyPruner | None:
    """Keys that follow a store can drop the ones no valid token names any more."""
    return keys.drop_expired_keys if isinstance(keys, RotatingKeyRing) else None


def purge(stores: Stores, now: int, prune_keys: KeyPruner | None = None) -> dict[str, int]:
    """Delete everything expired as of ``now``; returns the rows deleted per store."""
    counts = {name: store.purge(now) for name, store in purgeable_stores(stores).items()}
    if prune_keys is not None:
        counts["signing_keys"] = len(prune_keys(now))
    return counts


@contextlib.asynccontextmanager
async def periodic_purge(stores: Stores, clock: Callable[[], float],
                         prune_keys: KeyPruner | None = None,
                         interval: float = PURGE_INTERVAL) -> AsyncIterator[None]:
    """Run ``purge`` now and every ``interval`` seconds while the app runs."""

    async def loop() -> None:
        while True:
            try:
                counts = await asyncio.to_thread(purge, stores, int(clock()), prune_keys)
            except Exception:  # a failed purge (database busy) must not stop the AS
                log.warning("purge failed; retrying in %.0f s", interval, exc_info=True)
            else:
                log.info("purged %s", {k: v for k, v in counts.items() if v})
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
