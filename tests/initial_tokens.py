"""Initial access tokens for tests that register privileged clients at /register (RFC 7591
§3), issued straight into the realm database as `smartrealm client initial-token issue`
does."""

from __future__ import annotations

import time

from smartrealm.authz.stores.sql_initial_tokens import SqlInitialTokenStore
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine


def initial_token(realm: RealmConfig, *allows: str, uses: int = 1, lifetime: int = 3600) -> str:
    engine = make_engine(realm.database_url_for(None))
    try:
        now = int(time.time())
        value, _ = SqlInitialTokenStore.create(engine).issue(
            frozenset(allows), now + lifetime, uses, "test", now)
    finally:
        engine.dispose()
    return value


def bearer(realm: RealmConfig, *allows: str, uses: int = 1) -> dict[str, str]:
    """The Authorization header of a registration with these privileges."""
    return {"Authorization": f"Bearer {initial_token(realm, *allows, uses=uses)}"}
