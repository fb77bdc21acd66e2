"""Signing in with the lockout rules of ``lockout.py``: one place for every sign-in form
of the AS (the authorization's login page, the management page)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from smartrealm.authz.lockout import LoginFailureStore, LoginPolicy
from smartrealm.authz.records import User, UserStore
from smartrealm.oauth.passwords import verify_secret


@dataclass(frozen=True)
class LoginRefused:
    """Why a sign-in failed, as the page shows it (the same for unknown user names)."""

    message: str
    status: int


WRONG = LoginRefused("Wrong user name or password.", 401)


def locked_message(policy: LoginPolicy) -> LoginRefused:
    minutes = max(1, policy.lock_seconds // 60)
    return LoginRefused("Too many failed sign-ins with this user name: signing in with it is "
                        f"blocked for {minutes} minutes. Try again later.", 429)


class LoginGuard:
    """Password check with the lockout rules (lockout.py)."""

    def __init__(self, store: LoginFailureStore, policy: LoginPolicy,
                 now: Callable[[], int]) -> None:
        self._store, self._policy, self._now = store, policy, now

    async def sign_in(self, users: UserStore, username: str, password: str
                      ) -> User | LoginRefused:
        if self._store.locked_until(username, self._now()):
            return locked_message(self._policy)  # no password check while locked
        user = users.get(username)
        # verify_secret spends the same work for unknown users (no enumeration by timing).
        if verify_secret(password, user.password_hash if user else None) and user:
            self._store.clear(username)
            return user
        count = self._store.record_failure(username, self._now(), self._policy)
        if count.locked_until:
            return locked_message(self._policy)
        await asyncio.sleep(self._policy.delay(count.failures))
        return WRONG
