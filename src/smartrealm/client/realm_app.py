"""The realm's flow behind one object: discover, check, authorize once, use everywhere, or,
when one token cannot serve every server, one ordinary SMART launch per server.

    app = RealmApp(http, client=PublicClient(cid), redirect_uri=redirect, scope=scope)
    await app.prepare([ehr, imaging])          # discovery, reuse decision, scope plan
    url = app.begin()                          # send the user there
    while (url := await app.complete(callback_url)) is not None:
        ...                                    # sequential mode: send the user on
    ehr_session = app.session(ehr)

Shared mode (``decision.possible``): one request with one RFC 8707 ``resource`` per server
(seed), one token. Sequential mode: one request per server with ``aud`` = that server
(spec §3.2), each to that server's own authorization endpoint, one token each;
``decision.reasons`` says exactly why. Tokens are refreshed (with rotation) on a 401 by
the session; one refresher per token, shared by the sessions using it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import httpx

from smartrealm.client._http import normalize_url
from smartrealm.client.auth import AuthorizationRequest, parse_callback
from smartrealm.client.brands import BrandsCache, fetch_brand_endpoints
from smartrealm.client.credentials import ClientCredentials
from smartrealm.client.discovery import SmartConfiguration, discover
from smartrealm.client.errors import ClientUsageError
from smartrealm.client.fhir import FhirSession
from smartrealm.client.planning import ScopePlan, plan_scopes_for
from smartrealm.client.refresher import TokenRefresher
from smartrealm.client.reuse import ReuseDecision, check_token_reuse
from smartrealm.client.token_endpoint import exchange_code
from smartrealm.client.tokens import TokenSet

SHARED = "shared"
SEQUENTIAL = "sequential"


@dataclass
class Step:
    """One authorization: the servers it covers and where it goes."""

    bases: tuple[str, ...]
    config: SmartConfiguration
    scope: str
    auth: ClientCredentials
    request: AuthorizationRequest | None = None
    refresher: TokenRefresher | None = None


@dataclass
class _State:
    configs: tuple[SmartConfiguration, ...] = ()
    decision: ReuseDecision | None = None
    plan: ScopePlan | None = None
    steps: list[Step] = field(default_factory=list)
    current: int = 0


class RealmApp:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        client: ClientCredentials,
        redirect_uri: str,
        scope: str | Mapping[str, str],
        clients: Mapping[str, ClientCredentials] | None = None,
        on_tokens: Callable[[tuple[str, ...], TokenSet], None] | None = None,
    ) -> None:
        """``client`` authenticates at every AS unless ``clients`` names another one for
        a server (by base URL: a server of another AS knows the app by another id).
        ``scope`` is common or per server. ``on_tokens(bases, tokens)`` sees every new
        or refreshed TokenSet (to store it)."""
        self.http = http
        self.client = client
        self.clients = {normalize_url(b): c for b, c in (clients or {}).items()}
        self.redirect_uri = redirect_uri
        self.scope = scope
        self._on_tokens = on_tokens
        self._state = _State()

    # --- preparation ----------------------------------------------------------------

    async def prepare(self, bases: Sequence[str], *, plan: bool = True) -> ReuseDecision:
        """Discover every server, decide reuse (seed) and plan scopes (``plan``: fetch each
        CapabilityStatement). Returns the decision; the steps are ready for ``begin``."""
        if isinstance(bases, str) or not bases:
            raise ClientUsageError("give a non-empty sequence of FHIR base URLs")
        configs = tuple([await discover(self.http, base) for base in _unique(bases)])
        decision = check_token_reuse(configs)
        scope_plan = await plan_scopes_for(self.http, self.scope, configs) if plan else None
        self._state = _State(configs, decision, scope_plan)
        self._state.steps = self._steps()
        return decision

    async def prepare_associated(self, base: str, *, plan: bool = True) -> ReuseDecision:
        """``base`` plus the ``associated_endpoints`` it advertises (spec §1.3)."""
        config = await discover(self.http, base)
        return await self.prepare([base, *(e.url for e in config.associated_endpoints)], plan=plan)

    async def prepare_brand(
        self, base: str, *, cache: BrandsCache | None = None, plan: bool = True
    ) -> ReuseDecision:
        """Every endpoint of ``base``'s brand and its affiliates (spec §2.4)."""
        endpoints = await fetch_brand_endpoints(self.http, await discover(self.http, base), cache)
        return await self.prepare([base, *(e.address for e in endpoints)], plan=plan)

    @property
    def decision(self) -> ReuseDecision:
        if self._state.decision is None:
            raise ClientUsageError("call prepare() first")
        return self._state.decision

    @property
    def mode(self) -> str:
        return SHARED if self.decision.possible else SEQUENTIAL

    @property
    def plan(self) -> ScopePlan | None:
        return self._state.plan

    @property
    def configs(self) -> tuple[SmartConfiguration, ...]:
        return self._state.configs

    @property
    def bases(self) -> tuple[str, ...]:
        return tuple(c.base_url for c in self._state.configs)

    def _steps(self) -> list[Step]:
        configs = self._state.configs
        if self.decision.possible:
            scope = self._scope_for(None)
            return [Step(tuple(c.base_url for c in configs), configs[0], scope, self.client)]
        return [
            Step((c.base_url,), c, self._scope_for(c.base_url), self._client_for(c.base_url))
            for c in configs
        ]

    def _scope_for(self, base: str | None) -> str:
        plan = self._state.plan
        if plan is not None:
            return plan.scope if base is None else plan.server(base).scope
        if isinstance(self.scope, str):
            return self.scope
        if base is not None:
            return next(s for b, s in self.scope.items() if normalize_url(b) == normalize_url(base))
        return " ".join(dict.fromkeys(" ".join(self.scope.values()).split()))

    def _client_for(self, base: str) -> ClientCredentials:
        return self.clients.get(normalize_url(base), self.client)

    # --- the authorization steps ----------------------------------------------------

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(self._state.steps)

    @property
    def pending(self) -> Step | None:
        """The step waiting for the user, or None when every token is in."""
        state = self._state
        return state.steps[state.current] if state.current < len(state.steps) else None

    def begin(self, *, launch: str | None = None) -> str:
        """The authorize URL of the next step (GET). ``launch`` (EHR launch, spec §6.1)
        goes with the step covering the launching server, which must come first."""
        step = self.pending
        if step is None:
            raise ClientUsageError("no authorization step left (call prepare() first)")
        step.request = AuthorizationRequest.create(
            authorization_endpoint=step.config.authorization_endpoint,
            client_id=step.auth.client_id,
            redirect_uri=self.redirect_uri,
            # Spec §3.2: an EHR launch asks for the ``launch`` scope.
            scope=step.scope if launch is None else _with_launch_scope(step.scope),
            resources=step.bases if len(step.bases) > 1 else (),
            aud=step.bases[0] if len(step.bases) == 1 or launch is not None else None,
            launch=launch,
        )
        return step.request.url

    async def complete(self, callback_url: str) -> str | None:
        """Finish the pending step with the redirect back to the app: check ``state``, map
        an OAuth error, exchange the code. Returns the next step's authorize URL, or None
        when done."""
        step = self.pending
        if step is None or step.request is None:
            raise ClientUsageError("no authorization is pending (call begin() first)")
        code = parse_callback(callback_url, step.request)
        tokens = await exchange_code(
            self.http,
            step.config.token_endpoint,
            step.request,
            code,
            client_id=step.auth.client_id,
            auth=step.auth,
        )
        step.refresher = TokenRefresher(
            self.http,
            step.config.token_endpoint,
            tokens,
            step.auth,
            on_update=partial(self._notify, step.bases),
        )
        self._notify(step.bases, tokens)
        self._state.current += 1
        return self.begin() if self.pending is not None else None

    def _notify(self, bases: tuple[str, ...], tokens: TokenSet) -> None:
        if self._on_tokens is not None:
            self._on_tokens(bases, tokens)

    # --- using the tokens -----------------------------------------------------------

    def _step_of(self, base: str) -> Step:
        wanted = normalize_url(base)
        for step in self._state.steps:
            if wanted in map(normalize_url, step.bases) and step.refresher is not None:
                return step
        raise ClientUsageError(f"no token for {base} (not prepared or not yet authorized)")

    def tokens_for(self, base: str) -> TokenSet:
        refresher = self._step_of(base).refresher
        assert refresher is not None  # _step_of only returns authorized steps
        return refresher.tokens

    def refresher_for(self, base: str) -> TokenRefresher:
        refresher = self._step_of(base).refresher
        assert refresher is not None
        return refresher

    def session(self, base: str) -> FhirSession:
        """A FhirSession for ``base`` with its token and one refresh-and-retry on 401."""
        refresher = self.refresher_for(base)
        step = self._step_of(base)
        canonical = next(b for b in step.bases if normalize_url(b) == normalize_url(base))
        return FhirSession(self.http, canonical, refresher.tokens, refresher=refresher)


def _unique(bases: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for base in bases:
        seen.setdefault(normalize_url(base), base)
    return list(seen.values())


def _with_launch_scope(scope: str) -> str:
    scopes = scope.split()
    return scope if "launch" in scopes else " ".join(["launch", *scopes])
