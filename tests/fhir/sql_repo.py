"""A clock for SQL repository tests: it ticks on every read, so versions get distinct,
ordered lastUpdated values (the ``repo`` fixture in conftest.py uses it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Ticker:
    def __init__(self, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now
