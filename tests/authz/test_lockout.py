"""Sign-in lockout (authz/lockout.py): progressive delay, 5 failures lock the user name for
15 minutes, the same answers for unknown user names, persisted across app instances, the
authorization stays on the login page."""

from __future__ import annotations

import re
import time

import httpx

from smartrealm.authz.lockout import LoginPolicy
from smartrealm.oauth.keys import KeyRing
from smartrealm.realm.config import RealmConfig
from tests.authz.conftest import Flow, approve, login, redirect_params, start
from tests.authz.consent_helpers import Clock, as_client
from tests.authz.fhir_stub import FhirStub

ERROR = re.compile(r'<p class="error" id="error">([^<]*)</p>')
LOCKED = "Too many failed sign-ins with this user name"


def error_text(page: httpx.Response) -> str:
    match = ERROR.search(page.text)
    return match.group(1) if match else ""


async def fail(ua: httpx.AsyncClient, page: httpx.Response, username: str, times: int
               ) -> httpx.Response:
    for _ in range(times):
        page = await login(ua, page, username, "wrong")
    return page


def test_delay_grows_and_is_capped() -> None:
    policy = LoginPolicy(base_delay=0.25, max_delay=2.0)
    assert [policy.delay(n) for n in range(1, 8)] == [0.0, 0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


async def test_fifth_failure_locks_even_the_right_password(
        realm: RealmConfig, keys: KeyRing, stub: FhirStub) -> None:
    async with as_client(realm, keys, stub) as (ua, _app):
        page = await start(ua, Flow(realm))
        for _ in range(4):
            page = await login(ua, page, "patient", "wrong")
            assert page.status_code == 401 and error_text(page) == "Wrong user name or password."
        page = await login(ua, page, "patient", "wrong")
        assert page.status_code == 429 and LOCKED in error_text(page)
        right = await login(ua, page, "patient", "patient-demo")
        assert right.status_code == 429 and LOCKED in error_text(right)
        # Still the login page of the same authorization: nothing went back to the app.
        assert str(right.url).endswith("/interaction/login") and 'name="password"' in right.text


async def test_unknown_user_names_get_exactly_the_same_answers(
        realm: RealmConfig, keys: KeyRing, stub: FhirStub) -> None:
    async with as_client(realm, keys, stub) as (ua, _app):
        answers = {}
        for username in ("patient", "nobody-at-all"):
            page = await start(ua, Flow(realm))
            seen = []
            for _ in range(6):
                page = await login(ua, page, username, "wrong")
                seen.append((page.status_code, error_text(page)))
            answers[username] = seen
        assert answers["patient"] == answers["nobody-at-all"]
        assert [s for s, _ in answers["patient"]] == [401, 401, 401, 401, 429, 429]


async def test_the_lock_survives_a_restart_and_expires_after_15_minutes(
        realm: RealmConfig, keys: KeyRing, stub: FhirStub) -> None:
    clock = Clock()
    async with as_client(realm, keys, stub, clock=clock) as (ua, _app):
        await fail(ua, await start(ua, Flow(realm)), "patient", 5)
    async with as_client(realm, keys, stub, clock=clock) as (ua, _app):  # a new process
        page = await login(ua, await start(ua, Flow(realm)), "patient", "patient-demo")
        assert page.status_code == 429
        clock.now += 899
        page = await login(ua, await start(ua, Flow(realm)), "patient", "patient-demo")
        assert page.status_code == 429
        clock.now += 2
        page = await login(ua, await start(ua, Flow(realm)), "patient", "patient-demo")
        assert page.status_code == 200 and str(page.url).endswith("/interaction/consent")


async def test_lock_is_per_user_name(realm: RealmConfig, keys: KeyRing,
                                     stub: FhirStub) -> None:
    async with as_client(realm, keys, stub) as (ua, _app):
        page = await fail(ua, await start(ua, Flow(realm)), "patient", 5)
        assert page.status_code == 429
        other = await login(ua, page, "clinician", "clinician-demo")
        assert str(other.url).endswith("/interaction/patient")


async def test_success_clears_the_count(realm: RealmConfig, keys: KeyRing,
                                        stub: FhirStub) -> None:
    async with as_client(realm, keys, stub) as (ua, _app):
        await fail(ua, await start(ua, Flow(realm)), "patient", 4)
        ok = await login(ua, await start(ua, Flow(realm)), "patient", "patient-demo")
        assert str(ok.url).endswith("/interaction/consent")
        page = await fail(ua, await start(ua, Flow(realm)), "patient", 4)
        assert page.status_code == 401


async def test_failures_outside_the_window_are_forgotten(
        realm: RealmConfig, keys: KeyRing, stub: FhirStub) -> None:
    clock = Clock()
    async with as_client(realm, keys, stub, clock=clock) as (ua, _app):
        await fail(ua, await start(ua, Flow(realm)), "patient", 4)
        clock.now += 901
        page = await fail(ua, await start(ua, Flow(realm)), "patient", 4)
        assert page.status_code == 401


async def test_each_failure_answers_more_slowly(realm: RealmConfig, keys: KeyRing,
                                                stub: FhirStub) -> None:
    policy = LoginPolicy(base_delay=0.2, max_delay=0.4)
    async with as_client(realm, keys, stub, policy=policy) as (ua, _app):
        page = await start(ua, Flow(realm))
        took = []
        for _ in range(4):
            began = time.monotonic()
            page = await login(ua, page, "nobody", "wrong")
            took.append(time.monotonic() - began)
        # Failures 2, 3 and 4 wait at least 0.2, 0.4, 0.4 s on top of the password check.
        assert took[1] >= 0.2 and took[2] >= 0.4 and took[3] >= 0.4
        assert took[2] > took[0] + 0.3


async def test_a_locked_login_still_needs_csrf(realm: RealmConfig, keys: KeyRing,
                                               stub: FhirStub) -> None:
    async with as_client(realm, keys, stub) as (ua, _app):
        await fail(ua, await start(ua, Flow(realm)), "patient", 5)
        forged = await ua.post("/interaction/login",
                               data={"username": "patient", "password": "x"})
        assert forged.status_code == 403


async def test_deny_after_a_lock_still_reaches_the_app(realm: RealmConfig, keys: KeyRing,
                                                       stub: FhirStub) -> None:
    """Recoverable: another user can sign in and finish (or deny) the authorization."""
    async with as_client(realm, keys, stub) as (ua, _app):
        flow = Flow(realm)
        page = await fail(ua, await start(ua, flow), "clinician", 5)
        page = await login(ua, page, "patient", "patient-demo")
        params = redirect_params(await approve(ua, page, "deny"))
        assert params["error"] == "access_denied" and params["state"] == flow.state
