"""Single-use rows (authorization codes, RFC 6749 §4.1.2; EHR launch ids, SMART §6.1):
stored with an expiry, claimed at most once, kept a while after expiry so that a replay is
recognised as one rather than as an unknown value."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Row, Table, delete, select, update


def store(engine: Engine, table: Table, retention: int, **values: Any) -> None:
    """Insert an unused row (``values`` include ``expires_at``); rows expired longer than
    ``retention`` before it are purged on the way, so the table never grows unbounded."""
    with engine.begin() as conn:
        conn.execute(delete(table).where(
            table.c.expires_at < values["expires_at"] - retention))
        conn.execute(table.insert().values(used=False, **values))


def claim(engine: Engine, table: Table, key: str, value: str, now: int) -> Row[Any] | None:
    """Mark the unused, unexpired row ``key == value`` used and return it; None when it is
    unknown, expired or already used. The conditional UPDATE is the one atomic step: of two
    concurrent claims only one changes a row."""
    column = table.c[key]
    with engine.begin() as conn:
        claimed = conn.execute(update(table).where(
            column == value, table.c.used.is_(False), table.c.expires_at > now,
        ).values(used=True)).rowcount
        if claimed != 1:
            return None
        return conn.execute(select(table).where(column == value)).one()
