"""Telling the AS's patient index what a committed system-level write did to a Patient's
linking identifier (linking.py notes it; docs/behaviour.md "Linking a patient's records
across servers").

The FHIR server never writes the AS's index itself: it reports each change with
``POST {issuer}/patient-index``, authenticated as its own confidential client
``rs:<server id>`` (the same credentials it introspects with, storage/rs_credentials.py), and
the AS accepts it only for this server's records.

Reliability: the write has committed before the report is sent, so a report that cannot be
delivered cannot undo it. Each change is tried ``ATTEMPTS`` times with a short timeout and a
short pause between tries; if the AS still does not take it, a warning names the server and
the records and the command that repairs the index (``smartrealm patients rebuild --server
ID``). Once one change of a write has failed, the rest are not tried (a transaction of many
Patients must not hold its answer for minutes while the AS is down); they are named in the
same warning. Reports are not kept across a restart of the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import anyio.from_thread
import httpx
from sqlalchemy.exc import SQLAlchemyError

from smartrealm.core.defaults import LINK_REPORT_TIMEOUT as TIMEOUT
from smartrealm.core.rs_clients import rs_client_id
from smartrealm.fhir.linking import LinkChange
from smartrealm.guard.introspection import basic_auth
from smartrealm.realm.config import RealmConfig
from smartrealm.realm.patient_links import report_form
from smartrealm.storage.rs_credentials import resource_server_secret

log = logging.getLogger(__name__)
ATTEMPTS = 3
PAUSES = (0.2, 1.0)    # seconds before the second and third tries


class LinkReporter(Protocol):
    """What a write calls, in its worker thread, once its transaction has committed."""

    def report(self, changes: Sequence[LinkChange]) -> None:
        """Deliver ``changes``; never raises."""
        ...


class FromWorkerThread:
    """A ``LinkReporter`` for writes running in worker threads (``run_in_threadpool``): the
    report runs on the event loop, over the server's one outgoing HTTP client, while the
    thread waits for it (so the write answers after the AS has the change)."""

    def __init__(self, reporter: HttpLinkReporter) -> None:
        self._reporter = reporter

    def report(self, changes: Sequence[LinkChange]) -> None:
        try:
            anyio.from_thread.run(self._reporter.report, changes)
        except RuntimeError:  # not called from a worker thread: nothing to run it on
            self._reporter.lost(changes, "no event loop to report from")


class ReportRefusedError(Exception):
    """The AS answered, and retrying the same report cannot succeed (a 4xx)."""


class HttpLinkReporter:
    """Reports to the AS over HTTP."""

    def __init__(self, *, endpoint: str, server_id: str, credentials: Callable[[], httpx.Auth],
                 http: httpx.AsyncClient,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.endpoint, self.server_id = endpoint, server_id
        self._credentials = credentials
        self._auth: httpx.Auth | None = None
        self._http = http
        self._sleep = sleep

    @classmethod
    def for_server(cls, realm: RealmConfig, server_id: str,
                   http: httpx.AsyncClient) -> HttpLinkReporter:
        """Realm server ``server_id`` as client ``rs:<id>``. Its secret is read at the first
        report: a server that never changes a link never needs it."""
        def credentials() -> httpx.Auth:
            return basic_auth(rs_client_id(server_id), resource_server_secret(realm, server_id))

        return cls(endpoint=realm.auth_server.patient_index_endpoint, server_id=server_id,
                   credentials=credentials, http=http)

    async def report(self, changes: Sequence[LinkChange]) -> None:
        for done, change in enumerate(changes):
            problem = await self._deliver(change)
            if problem is not None:
                self.lost(changes[done:], problem)
                return

    async def _deliver(self, change: LinkChange) -> str | None:
        """None once the AS took ``change``; else what went wrong the last time."""
        problem = "not tried"
        for attempt in range(ATTEMPTS):
            if attempt:
                await self._sleep(PAUSES[min(attempt - 1, len(PAUSES) - 1)])
            try:
                await self._post(change)
                return None
            except ReportRefusedError as refused:
                return str(refused)
            except (httpx.HTTPError, SQLAlchemyError) as exc:
                # SQLAlchemyError: the secret could not be read (realm database unavailable)
                problem = type(exc).__name__
        return problem

    async def _post(self, change: LinkChange) -> None:
        if self._auth is None:
            # The secret's one read, from the realm database (small; once per process).
            self._auth = self._credentials()
        response = await self._http.post(self.endpoint, auth=self._auth, timeout=TIMEOUT,
                                   data=report_form(change.patient_id, change.person),
                                   headers={"Accept": "application/json"})
        if response.status_code == 200:
            return
        if response.status_code == 401:
            self._auth = None  # read the secret again next time
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise ReportRefusedError(f"the AS answered {response.status_code} "
                                f"{_error_code(response)}")
        raise httpx.HTTPStatusError(f"{response.status_code}", request=response.request,
                                    response=response)

    def lost(self, changes: Sequence[LinkChange], problem: str) -> None:
        # Record ids only: the identifier values are patient data, and logs travel.
        ids = ", ".join(f"Patient/{c.patient_id}" for c in changes[:20])
        more = f" and {len(changes) - 20} more" if len(changes) > 20 else ""
        log.warning("server %s: the realm's patient index could not be told of the new link "
                    "of %s%s (%s); the write itself is stored. Until an operator runs "
                    "`smartrealm patients rebuild --server %s` (or `smartrealm patients "
                    "link|unlink`), the AS links these records as before.",
                    self.server_id, ids, more, problem, self.server_id)


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else ""
