"""Initial access tokens (RFC 7591 §3) on every backend (``contract_stores``: SQLite,
PostgreSQL, in memory): valid until expiry, spent one use at a time, never more uses than
issued even when registrations race; in SQL (``sql_url``) only the hash is stored."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from smartrealm.authz.records import Stores
from smartrealm.authz.stores.sql_initial_tokens import SqlInitialTokenStore
from smartrealm.storage import make_engine


def test_issue_find_claim_expire(contract_stores: Stores) -> None:
    store = contract_stores.initial_tokens
    value, token = store.issue(frozenset({"backend-services"}), 200, 2, "partner", 100)
    assert store.find(value, 150) == token and token.allows == {"backend-services"}
    assert store.find(value + "x", 150) is None
    assert store.find(value, 200) is None  # expired at expires_at
    claimed = store.claim(value, 150)
    assert claimed is not None and claimed.uses_left == 1
    assert store.claim(value, 200) is None  # expired: no use spent
    assert store.claim(value, 150) is not None
    assert store.claim(value, 150) is None and store.find(value, 150) is None  # used up
    assert [t.id for t in store.all()] == [token.id]


def test_only_the_hash_is_stored(sql_url: str) -> None:
    engine = make_engine(sql_url)
    value, _ = SqlInitialTokenStore.create(engine).issue(frozenset(), 200, 1, "", 100)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM as_initial_access_tokens")).all()
    assert rows and all(value not in str(tuple(r)) for r in rows)


def test_revoke(contract_stores: Stores) -> None:
    store = contract_stores.initial_tokens
    value, token = store.issue(frozenset(), 200, 5, "", 100)
    assert store.revoke(token.id) and not store.revoke(token.id)
    assert store.find(value, 150) is None and store.claim(value, 150) is None


def test_concurrent_claims_never_exceed_the_uses(contract_stores: Stores) -> None:
    store = contract_stores.initial_tokens
    value, _ = store.issue(frozenset(), 10**9, 3, "", 100)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: store.claim(value, 150), range(16)))
    assert sum(r is not None for r in results) == 3
    assert [t.uses_left for t in store.all()] == [0]
