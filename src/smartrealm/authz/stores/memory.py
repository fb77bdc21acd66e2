"""Every store of the AS kept in process memory: the same contracts as the SQL stores
(sql_stores.py and the Sql* classes beside each protocol), run through the same contract
suites, so unit tests of the AS need no database. Nothing survives the process and nothing
is shared between processes: for tests and single-process experiments, never for `serve`.

One lock serialises every change, which gives the atomic steps the SQL stores get from a
conditional UPDATE (a code, a launch or a refresh token is claimed once; a failure count
crosses the lock threshold once)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from smartrealm.authz.consent_store import AppAccess, RememberedConsent
from smartrealm.authz.initial_tokens import InitialAccessToken
from smartrealm.authz.launch_store import EhrSession, EhrStores
from smartrealm.authz.lockout import FailureCount, LoginPolicy
from smartrealm.authz.patient_index import PatientLink
from smartrealm.authz.records import Interaction, Stores, User
from smartrealm.core.defaults import (
    CODE_RETENTION,
    INITIAL_TOKEN_RETENTION,
    LAUNCH_RETENTION,
    LOGIN_FAILURE_PURGE_AFTER,
    REFRESH_RETENTION,
)
from smartrealm.oauth.launch import LaunchContext
from smartrealm.oauth.passwords import token_hash
from smartrealm.oauth.store import AuthorizationCode, Client, RefreshToken, RefreshTokenState
from smartrealm.oauth.token_registry import AccessTokenRecord, CodeLink

K = TypeVar("K")
V = TypeVar("V")


def _drop_where(rows: dict[K, V], dead: Callable[[V], bool]) -> int:
    """Delete the rows ``dead`` picks; how many went."""
    gone = [key for key, row in rows.items() if dead(row)]
    for key in gone:
        del rows[key]
    return len(gone)


@dataclass
class _Claimable:
    """A single-use row: a code or a launch."""

    value: AuthorizationCode | LaunchContext
    expires_at: int
    used: bool = False


@dataclass
class _Refresh:
    token: RefreshToken
    used: bool = False
    revoked: bool = False


@dataclass
class _Failures:
    failures: int
    window_start: int
    locked_until: int
    last_seen: int


@dataclass
class _State:
    """Tables shared by stores that read each other's rows (app access reads the refresh
    tokens, as SqlAppAccessStore reads their table)."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    refresh: dict[str, _Refresh] = field(default_factory=dict)


class MemoryClientStore:
    def __init__(self, state: _State) -> None:
        self._lock, self._rows = state.lock, dict[str, Client]()

    def get(self, client_id: str) -> Client | None:
        return self._rows.get(client_id)

    def put(self, client: Client) -> None:
        with self._lock:
            self._rows[client.client_id] = client

    def all(self) -> list[Client]:
        return [self._rows[k] for k in sorted(self._rows)]

    def delete(self, client_id: str) -> bool:
        with self._lock:
            return self._rows.pop(client_id, None) is not None

    def replace_secret_hash(self, client_id: str, old: str, new: str) -> bool:
        with self._lock:
            client = self._rows.get(client_id)
            if client is None or client.secret_hash != old:
                return False
            self._rows[client_id] = replace(client, secret_hash=new)
            return True


class MemoryUserStore:
    def __init__(self, state: _State) -> None:
        self._lock, self._rows = state.lock, dict[str, User]()

    def get(self, username: str) -> User | None:
        return self._rows.get(username)

    def put(self, user: User) -> None:
        with self._lock:
            self._rows[user.username] = user


class _SingleUse:
    """Codes and launches (in SQL: stores/sql_single_use.py): stored with an expiry, claimed
    at most once, kept ``retention`` seconds after expiry so a replay is recognised."""

    def __init__(self, state: _State, retention: int) -> None:
        self._lock, self._retention = state.lock, retention
        self._rows: dict[str, _Claimable] = {}

    def _store(self, key: str, value: AuthorizationCode | LaunchContext,
               expires_at: int) -> None:
        with self._lock:
            _drop_where(self._rows, lambda row: row.expires_at < expires_at - self._retention)
            self._rows[key] = _Claimable(value, expires_at)

    def _claim(self, key: str, now: int) -> AuthorizationCode | LaunchContext | None:
        with self._lock:
            row = self._rows.get(key)
            if row is None or row.used or row.expires_at <= now:
                return None
            row.used = True
            return row.value



class MemoryCodeStore(_SingleUse):
    def __init__(self, state: _State) -> None:
        super().__init__(state, CODE_RETENTION)

    def save(self, code_hash: str, code: AuthorizationCode) -> None:
        self._store(code_hash, code, code.expires_at)

    def consume(self, code_hash: str, now: int) -> AuthorizationCode | None:
        code = self._claim(code_hash, now)
        return code if isinstance(code, AuthorizationCode) else None

    def purge(self, now: int) -> int:
        with self._lock:
            return _drop_where(self._rows, lambda row: row.expires_at < now - CODE_RETENTION)


class MemoryLaunchStore(_SingleUse):
    def __init__(self, state: _State) -> None:
        super().__init__(state, LAUNCH_RETENTION)

    def save(self, id_hash: str, launch: LaunchContext) -> None:
        self._store(id_hash, launch, launch.expires_at)

    def claim(self, id_hash: str, now: int) -> LaunchContext | None:
        launch = self._claim(id_hash, now)
        return launch if isinstance(launch, LaunchContext) else None

    def purge(self, now: int) -> int:
        with self._lock:
            return _drop_where(self._rows, lambda row: row.expires_at <= now)


class MemoryRefreshStore:
    def __init__(self, state: _State) -> None:
        self._lock, self._rows = state.lock, state.refresh

    def save(self, token_hash: str, token: RefreshToken) -> None:
        with self._lock:
            self._rows[token_hash] = _Refresh(token)

    def rotate(self, token_hash: str, now: int) -> RefreshToken | None:
        with self._lock:
            _drop_where(self._rows, lambda r: r.token.expires_at < now - REFRESH_RETENTION)
            row = self._rows.get(token_hash)
            if row is None:
                return None
            if row.used or row.revoked or row.token.expires_at <= now:
                if row.used:  # a replay: the token leaked, so end every token of the grant
                    self._revoke(row.token.family)
                return None
            row.used = True
            return row.token

    def lookup(self, token_hash: str) -> RefreshTokenState | None:
        row = self._rows.get(token_hash)
        return None if row is None else RefreshTokenState(row.token, used=row.used,
                                                          revoked=row.revoked)

    def revoke_family(self, family: str) -> int:
        with self._lock:
            return self._revoke(family)

    def _revoke(self, family: str) -> int:
        ended = [r for r in self._rows.values() if r.token.family == family and not r.revoked]
        for row in ended:
            row.revoked = True
        return len(ended)

    def purge(self, now: int) -> int:
        # Used (rotated) rows stay until they expire: presenting one is a replay to detect.
        with self._lock:
            return _drop_where(self._rows, lambda r: r.token.expires_at <= now or r.revoked)


class _Expiring:
    """Rows with an expiry read only while unexpired: interactions and EHR sessions."""

    def __init__(self, state: _State) -> None:
        self._lock = state.lock
        self._rows: dict[str, tuple[Interaction | EhrSession, int]] = {}

    def _create(self, key: str, value: Interaction | EhrSession, expires_at: int,
                garbage_before: int) -> None:
        with self._lock:
            _drop_where(self._rows, lambda row: row[1] < garbage_before)
            self._rows[key] = (value, expires_at)

    def _get(self, key: str, now: int) -> Interaction | EhrSession | None:
        found = self._rows.get(key)
        return found[0] if found is not None and found[1] > now else None

    def _update(self, key: str, value: Interaction | EhrSession, expires_at: int) -> None:
        with self._lock:
            if key in self._rows:
                self._rows[key] = (value, expires_at)

    def delete(self, key_hash: str) -> None:
        with self._lock:
            self._rows.pop(key_hash, None)

    def purge(self, now: int) -> int:
        with self._lock:
            return _drop_where(self._rows, lambda row: row[1] <= now)


class MemoryInteractionStore(_Expiring):
    def create(self, key_hash: str, interaction: Interaction) -> None:
        # Anything that expired a day before this new interaction's expiry is garbage.
        self._create(key_hash, interaction, interaction.expires_at,
                     interaction.expires_at - 86400)

    def get(self, key_hash: str, now: int) -> Interaction | None:
        found = self._get(key_hash, now)
        return found if isinstance(found, Interaction) else None

    def update(self, key_hash: str, interaction: Interaction) -> None:
        self._update(key_hash, interaction, interaction.expires_at)


class MemoryEhrSessionStore(_Expiring):
    def create(self, key_hash: str, session: EhrSession) -> None:
        self._create(key_hash, session, session.expires_at,
                     session.expires_at - 2 * LAUNCH_RETENTION)

    def get(self, key_hash: str, now: int) -> EhrSession | None:
        found = self._get(key_hash, now)
        return found if isinstance(found, EhrSession) else None

    def update(self, key_hash: str, session: EhrSession) -> None:
        self._update(key_hash, session, session.expires_at)


class MemoryAppLaunchStore:
    def __init__(self, state: _State) -> None:
        self._lock, self._rows = state.lock, dict[str, str]()

    def put(self, client_id: str, launch_url: str) -> None:
        with self._lock:
            self._rows[client_id] = launch_url

    def get(self, client_id: str) -> str | None:
        return self._rows.get(client_id)

    def all(self) -> list[tuple[str, str]]:
        return [(k, self._rows[k]) for k in sorted(self._rows)]

    def delete(self, client_id: str) -> None:
        with self._lock:
            self._rows.pop(client_id, None)


class MemoryReplayCache:
    def __init__(self, state: _State) -> None:
        self._lock, self._rows = state.lock, dict[str, int]()

    def first_use(self, key: str, expires_at: int, now: int) -> bool:
        with self._lock:
            seen = self._rows.get(key)
            if seen is not None and seen > now:
                return False
            self._rows[key] = expires_at
            return True

    def purge(self, now: int) -> int:
        with self._lock:
            return _drop_where(self._rows, lambda expires_at: expires_at <= now)


class MemoryTokenRegistry:
    def __init__(self, state: _State) -> None:
        self._lock = state.lock
        self._tokens: dict[str, AccessTokenRecord] = {}
        self._codes: dict[str, tuple[str, int]] = {}

    def record(self, token: AccessTokenRecord, started_by: CodeLink | None = None) -> None:
        with self._lock:
            self._tokens[token.jti] = token
            if started_by is not None:
                self.link_code(started_by.code_hash, token.family, started_by.expires_at)

    def get(self, jti: str) -> AccessTokenRecord | None:
        return self._tokens.get(jti)

    def revoke(self, jti: str) -> bool:
        with self._lock:
            token = self._tokens.get(jti)
            if token is None:
                return False
            self._tokens[jti] = replace(token, revoked=True)
            return True

    def revoke_family(self, family: str) -> int:
        with self._lock:
            ended = [t for t in self._tokens.values() if t.family == family and not t.revoked]
            for token in ended:
                self._tokens[token.jti] = replace(token, revoked=True)
            return len(ended)

    def link_code(self, code_hash: str, family: str, expires_at: int) -> None:
        with self._lock:  # a code starts exactly one family: a second link keeps the first
            self._codes.setdefault(code_hash, (family, expires_at))

    def family_of_code(self, code_hash: str) -> str | None:
        found = self._codes.get(code_hash)
        return None if found is None else found[0]

    def purge(self, now: int) -> int:
        # A revoked row can go at once: an unknown jti is inactive too.
        with self._lock:
            return (_drop_where(self._tokens, lambda t: t.expires_at <= now or t.revoked)
                    + _drop_where(self._codes, lambda link: link[1] <= now))


class MemoryRsCredentials:
    def __init__(self, state: _State) -> None:
        self._lock, self._rows = state.lock, dict[str, str]()

    def secret(self, server_id: str) -> str | None:
        return self._rows.get(server_id)

    def ensure(self, server_id: str) -> str:
        with self._lock:
            return self._rows.setdefault(server_id, secrets.token_urlsafe(32))


class MemoryLoginFailureStore:
    def __init__(self, state: _State) -> None:
        self._lock, self._rows = state.lock, dict[str, _Failures]()

    def locked_until(self, username: str, now: int) -> int:
        row = self._rows.get(token_hash(username))
        return row.locked_until if row is not None and row.locked_until > now else 0

    def count(self, username: str, now: int) -> FailureCount:
        row = self._rows.get(token_hash(username))
        if row is None:
            return FailureCount(0, 0)
        return FailureCount(row.failures, row.locked_until if row.locked_until > now else 0)

    def record_failure(self, username: str, now: int, policy: LoginPolicy) -> FailureCount:
        key = token_hash(username)
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                _drop_where(self._rows, lambda r: r.last_seen < now - LOGIN_FAILURE_PURGE_AFTER)
                row = self._rows[key] = _Failures(0, now, 0, now)
            if row.window_start < now - policy.window:
                row.failures, row.window_start = 0, now
            row.failures += 1
            row.last_seen = now
            # Only the failure that crosses the threshold starts the lock (and resets the
            # count), so further failures cannot extend it.
            if row.failures >= policy.max_failures:
                row.failures, row.window_start = 0, now
                row.locked_until = now + policy.lock_seconds
                return FailureCount(policy.max_failures, row.locked_until)
            return FailureCount(row.failures,
                                row.locked_until if row.locked_until > now else 0)

    def clear(self, username: str) -> None:
        with self._lock:
            self._rows.pop(token_hash(username), None)


class MemoryConsentStore:
    def __init__(self, state: _State) -> None:
        self._lock = state.lock
        self._rows: dict[tuple[str, str], RememberedConsent] = {}

    def get(self, username: str, client_id: str) -> RememberedConsent | None:
        return self._rows.get((username, client_id))

    def put(self, consent: RememberedConsent) -> None:
        with self._lock:
            self._rows[(consent.username, consent.client_id)] = consent

    def list_for(self, username: str) -> list[RememberedConsent]:
        return [c for (user, _client), c in sorted(self._rows.items()) if user == username]

    def delete(self, username: str, client_id: str) -> bool:
        with self._lock:
            return self._rows.pop((username, client_id), None) is not None


class MemoryAppAccessStore:
    """Reads the refresh tokens of the same state: a family's live token is its one unused,
    unrevoked, unexpired row; the user is the grant's ``subject``."""

    def __init__(self, state: _State) -> None:
        self._lock, self._refresh = state.lock, state.refresh

    def _live(self, username: str, now: int, client_id: str | None = None) -> list[_Refresh]:
        rows = [r for r in self._refresh.values()
                if not r.used and not r.revoked and r.token.expires_at > now
                and r.token.grant.subject == username
                and (client_id is None or r.token.client_id == client_id)]
        return sorted(rows, key=lambda r: r.token.client_id)

    def active(self, username: str, now: int) -> list[AppAccess]:
        apps: dict[str, AppAccess] = {}
        for row in self._live(username, now):
            grant = row.token.grant.to_dict()
            scope = " ".join(dict.fromkeys(
                [t for s in grant["servers"] for t in s["scopes"]] + grant["identity_scopes"]))
            seen = apps.get(row.token.client_id)
            apps[row.token.client_id] = AppAccess(
                row.token.client_id, (seen.grants if seen else 0) + 1, scope,
                max(row.token.expires_at, seen.expires_at if seen else 0))
        return list(apps.values())

    def revoke(self, username: str, client_id: str, now: int) -> list[str]:
        with self._lock:
            families = sorted({r.token.family for r in self._live(username, now, client_id)})
            for row in self._refresh.values():
                if row.token.family in families:
                    row.revoked = True
            return families


class MemoryInitialTokenStore:
    def __init__(self, state: _State) -> None:
        self._lock = state.lock
        self._rows: dict[str, InitialAccessToken] = {}  # by the value's hash

    def issue(self, allows: frozenset[str], expires_at: int, uses: int, label: str,
              now: int) -> tuple[str, InitialAccessToken]:
        value = secrets.token_urlsafe(32)
        digest = token_hash(value)
        token = InitialAccessToken(digest[:16], allows, expires_at, uses, label, now)
        with self._lock:
            _drop_where(self._rows, lambda t: t.expires_at < now - INITIAL_TOKEN_RETENTION)
            self._rows[digest] = token
        return value, token

    def find(self, value: str, now: int) -> InitialAccessToken | None:
        token = self._rows.get(token_hash(value))
        return token if token is not None and token.active(now) else None

    def claim(self, value: str, now: int) -> InitialAccessToken | None:
        digest = token_hash(value)
        with self._lock:
            token = self._rows.get(digest)
            if token is None or token.uses_left <= 0 or token.expires_at <= now:
                return None
            self._rows[digest] = replace(token, uses_left=token.uses_left - 1)
            return self._rows[digest]

    def all(self) -> list[InitialAccessToken]:
        return sorted(self._rows.values(), key=lambda t: t.created_at)

    def revoke(self, token_id: str) -> bool:
        with self._lock:
            return bool(_drop_where(self._rows, lambda t: t.id == token_id))


class MemoryPatientIndex:
    def __init__(self, state: _State) -> None:
        self._lock = state.lock
        self._rows: dict[tuple[str, str], PatientLink] = {}

    def link(self, links: Sequence[PatientLink]) -> int:
        with self._lock:
            for link in links:  # the last one given for a (server, record) wins
                self._rows[(link.server_id, link.patient_id)] = link
        return len(links)

    def unlink(self, server_id: str, patient_id: str) -> bool:
        with self._lock:
            return self._rows.pop((server_id, patient_id), None) is not None

    def person_of(self, server_id: str, patient_id: str) -> str | None:
        link = self._rows.get((server_id, patient_id))
        return None if link is None else link.person

    def records_of(self, person: str) -> list[PatientLink]:
        return sorted((k for k in self._rows.values() if k.person == person),
                      key=lambda k: (k.server_id, k.patient_id))

    def on_server(self, server_id: str | None, *, limit: int, offset: int = 0
                  ) -> list[PatientLink]:
        rows = sorted((k for k in self._rows.values()
                       if server_id is None or k.server_id == server_id),
                      key=lambda k: (k.person, k.server_id, k.patient_id))
        return rows[offset:offset + limit]

    def count(self, server_id: str | None = None) -> int:
        return sum(1 for k in self._rows.values() if server_id is None or k.server_id == server_id)

    def replace_server(self, server_id: str, links: Sequence[PatientLink]) -> int:
        if any(k.server_id != server_id for k in links):
            raise ValueError(f"every link must be on server {server_id!r}")
        with self._lock:
            _drop_where(self._rows, lambda link: link.server_id == server_id)
            kept = {(k.server_id, k.patient_id): k for k in links}
            self._rows.update(kept)
        return len(kept)


def memory_stores() -> Stores:
    """Every store of the AS, empty, in this process's memory."""
    state = _State()
    return Stores(clients=MemoryClientStore(state), users=MemoryUserStore(state),
                  codes=MemoryCodeStore(state), refresh_tokens=MemoryRefreshStore(state),
                  interactions=MemoryInteractionStore(state),
                  ehr=EhrStores(launches=MemoryLaunchStore(state),
                                app_launch_urls=MemoryAppLaunchStore(state),
                                sessions=MemoryEhrSessionStore(state)),
                  replays=MemoryReplayCache(state), tokens=MemoryTokenRegistry(state),
                  rs_credentials=MemoryRsCredentials(state),
                  login_failures=MemoryLoginFailureStore(state),
                  client_auth_failures=MemoryLoginFailureStore(state),
                  consents=MemoryConsentStore(state), app_access=MemoryAppAccessStore(state),
                  initial_tokens=MemoryInitialTokenStore(state),
                  patient_index=MemoryPatientIndex(state))
