"""Password-guessing defence for the AS's sign-in forms (docs/behaviour.md: repeated
failures slow down and lock the account for a while; spec §13 server-side hardening).

Failures are counted per submitted user name — existing or not, so neither the delay nor the
lock tells an attacker whether a user exists — in the realm database, so the count survives
restarts and is shared by every AS process. Each failure slows the answer down a little more;
``max_failures`` failures within ``window`` lock that user name for ``lock_seconds``. While
locked, no password is even checked. A successful sign-in clears the count. The row key is
the SHA-256 of the user name: the table holds no attacker-chosen text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    lock_seconds: int = 900
    window: int = 900  # failures older than this no longer count
    base_delay: float = 0.25  # seconds added to the 2nd failure's answer, doubling after
    max_delay: float = 2.0

    def delay(self, failures: int) -> float:
        if failures <= 1:
            return 0.0
        return min(self.base_delay * 2.0 ** (failures - 2), self.max_delay)


# Failed client authentication (authz/client_guard.py): client secrets are not guessable
# like passwords, so the count is higher; a caller locked out just waits, without delays.
CLIENT_AUTH_POLICY = LoginPolicy(max_failures=10, window=300, lock_seconds=300,
                                 base_delay=0.0, max_delay=0.0)


@dataclass(frozen=True)
class FailureCount:
    failures: int  # failures in the current window (0 right after a lock starts)
    locked_until: int  # epoch seconds; 0 when not locked


class LoginFailureStore(Protocol):
    def locked_until(self, username: str, now: int) -> int:
        """Epoch seconds until which ``username`` is locked; 0 when it is not."""
        ...

    def record_failure(self, username: str, now: int, policy: LoginPolicy) -> FailureCount:
        """Count one failure atomically; the failure that reaches ``max_failures`` starts
        the lock."""
        ...

    def clear(self, username: str) -> None: ...

    def count(self, username: str, now: int) -> FailureCount:
        """The failures counted so far (0: none) and the lock (0: not locked)."""
        ...
