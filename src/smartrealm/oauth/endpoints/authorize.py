"""The authorization request (SMART §3, RFC 6749 §4.1.1, RFC 7636, RFC 8707) as an ordered
list of small named checks.

The first checks establish that the client and its redirect URI can be trusted; until they
pass, errors are shown to the user and NEVER redirected (RFC 6749 §4.1.2.1). After that,
errors go back to the client as a redirect carrying ``state``.
"""

# ruff: noqa: N818  (ErrorPage/ErrorRedirect name what happens, not *Error)
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from smartrealm.oauth import pkce
from smartrealm.oauth.errors import (
    InvalidRequest,
    InvalidScope,
    LoginRequired,
    OAuthError,
    UnsupportedResponseType,
)
from smartrealm.oauth.launch import LaunchContext, check_launch_use, check_launch_value
from smartrealm.oauth.realm_view import Realm, SharedAudience
from smartrealm.oauth.resources import Audience, parse_audience
from smartrealm.oauth.scopes import ScopeSet, ScopeSyntaxError, parse_scopes
from smartrealm.oauth.store import Client

# RFC 8707 §2: resource MAY repeat; nothing else may (RFC 6749 §3.1).
REPEATABLE = frozenset({"resource"})


class ErrorPage(Exception):
    """An error for the user's eyes only: the redirect URI is not trusted."""

    def __init__(self, error: OAuthError) -> None:
        super().__init__(error.description)
        self.error = error


class ErrorRedirect(Exception):
    """An error sent back to the client's (verified) redirect URI."""

    def __init__(self, error: OAuthError, redirect_uri: str, state: str | None) -> None:
        super().__init__(error.description)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state

    def url(self, issuer: str) -> str:
        return self.error.redirect_url(self.redirect_uri, self.state, iss=issuer)


@dataclass(frozen=True)
class AuthorizeRequest:
    """A request that passed every check."""

    client: Client
    redirect_uri: str
    state: str
    scopes: ScopeSet
    code_challenge: str
    audience: Audience
    nonce: str | None = None
    launch: LaunchContext | None = None  # EHR launch (§6.1), already claimed


@dataclass
class _Check:
    params: Mapping[str, Sequence[str]]
    realm: Realm
    claim_launch: Callable[[str], LaunchContext | None] | None = None
    shared_audience: SharedAudience | None = None  # None: no multi-server check
    client: Client | None = None
    redirect_uri: str = ""
    state: str | None = None
    values: dict[str, object] = field(default_factory=dict)

    def one(self, name: str) -> str | None:
        values = self.params.get(name, [])
        return values[0] if values else None


def check_client_id(c: _Check, find_client: Callable[[str], Client | None]) -> None:
    values = c.params.get("client_id", [])
    if len(values) != 1 or not values[0]:
        raise ErrorPage(InvalidRequest("client_id is missing or repeated"))
    c.client = find_client(values[0])
    if c.client is None:
        raise ErrorPage(InvalidRequest("unknown client_id"))


def check_redirect_uri(c: _Check) -> None:
    # SMART §3.2: SHALL exactly match a pre-registered URI; no redirect otherwise.
    values = c.params.get("redirect_uri", [])
    assert c.client is not None
    if len(values) != 1 or values[0] not in c.client.redirect_uris:
        raise ErrorPage(InvalidRequest("redirect_uri is missing or not registered for this "
                                       "client"))
    c.redirect_uri = values[0]
    states = c.params.get("state", [])
    c.state = states[0] if len(states) == 1 else None


def check_no_repeats(c: _Check) -> None:
    for name, values in c.params.items():
        if len(values) > 1 and name not in REPEATABLE:
            raise InvalidRequest(f"{name} must not be repeated")


def check_response_type(c: _Check) -> None:
    value = c.one("response_type")
    if not value:
        raise InvalidRequest("response_type is required")
    if value != "code":
        raise UnsupportedResponseType("only response_type=code is supported")


def check_state(c: _Check) -> None:
    # SMART §3.2: state is required (CSRF protection for the client).
    if not c.one("state"):
        raise InvalidRequest("state is required")


def check_prompt(c: _Check) -> None:
    # OIDC Core §3.1.2.1: this AS keeps no login session, so prompt=none cannot succeed.
    if "none" in (c.one("prompt") or "").split():
        raise LoginRequired("the user must log in")


def check_launch(c: _Check) -> None:
    check_launch_value(c.one("launch"))


def check_scope(c: _Check) -> None:
    value = c.one("scope")
    if not value or not value.strip():
        raise InvalidRequest("scope is required")
    try:
        c.values["scopes"] = parse_scopes(value)
    except ScopeSyntaxError as exc:
        raise InvalidScope(str(exc)) from None


def check_pkce(c: _Check) -> None:
    # SMART §3.4: challenge required, method S256 required (missing method = plain).
    challenge = c.one("code_challenge")
    if not challenge:
        raise InvalidRequest("code_challenge is required (PKCE)")
    if c.one("code_challenge_method") not in pkce.SUPPORTED_METHODS:
        raise InvalidRequest("code_challenge_method must be S256")
    if not pkce.is_valid_challenge(challenge):
        raise InvalidRequest("code_challenge is not a S256 challenge")


def check_audience(c: _Check) -> None:
    assert c.client is not None
    c.values["audience"] = parse_audience(
        c.realm, c.params.get("aud", []), c.params.get("resource", []),
        c.client.allowed_servers)


async def check_shared_audience(c: _Check) -> None:
    """docs/behaviour.md: servers share one token only if each advertises
    auth-multi-aud-token. Before the launch is used up, so a refused request leaves it."""
    audience = c.values["audience"]
    assert isinstance(audience, Audience)
    if c.shared_audience is not None:
        await c.shared_audience.check(audience.servers)


def check_launch_context(c: _Check) -> None:
    """§6.1: resolve (and use up) the launch last, once the rest of the request is valid;
    see smartrealm.oauth.launch for its rules."""
    value = c.one("launch")
    if value is None:
        return
    assert c.client is not None
    launch = c.claim_launch(value) if c.claim_launch is not None else None
    audience, scopes = c.values["audience"], c.values["scopes"]
    assert isinstance(audience, Audience) and isinstance(scopes, ScopeSet)
    c.values["audience"] = check_launch_use(
        launch, client_id=c.client.client_id, scopes=scopes, audience=audience,
        aud_given=bool(c.params.get("aud")), realm=c.realm)
    c.values["launch"] = launch


TRUST_CHECKS = (check_redirect_uri,)
# A check raises an OAuthError or returns; one that needs I/O is a coroutine function.
CHECKS: tuple[Callable[[_Check], Awaitable[None] | None], ...] = (
    check_no_repeats, check_response_type, check_state, check_prompt, check_launch,
    check_scope, check_pkce, check_audience, check_shared_audience, check_launch_context,
)


async def validate_authorize(params: Mapping[str, Sequence[str]], realm: Realm,
                             find_client: Callable[[str], Client | None],
                             claim_launch: Callable[[str], LaunchContext | None] | None = None,
                             *, shared_audience: SharedAudience | None = None,
                             ) -> AuthorizeRequest:
    """Run every check in order; raise ``ErrorPage`` or ``ErrorRedirect`` on the first
    failure, so no code is ever issued for a bad request. ``claim_launch`` resolves and uses
    up an EHR launch id (None: no launch is known); ``shared_audience`` checks that the
    servers of a multi-server request may share a token (None: not checked)."""
    c = _Check(params, realm, claim_launch, shared_audience)
    check_client_id(c, find_client)
    for trust_check in TRUST_CHECKS:
        trust_check(c)
    try:
        for check in CHECKS:
            pending = check(c)
            if pending is not None:
                await pending
    except OAuthError as error:
        raise ErrorRedirect(error, c.redirect_uri, c.state) from None
    assert c.client is not None
    scopes, audience = c.values["scopes"], c.values["audience"]
    assert isinstance(scopes, ScopeSet) and isinstance(audience, Audience)
    launch = c.values.get("launch")
    assert launch is None or isinstance(launch, LaunchContext)
    return AuthorizeRequest(c.client, c.redirect_uri, c.one("state") or "", scopes,
                            c.one("code_challenge") or "", audience, c.one("nonce"), launch)
