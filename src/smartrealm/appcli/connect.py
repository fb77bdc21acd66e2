"""`smartrealm app connect`: discover a realm, decide whether one token can serve every
server, plan the scopes, authorize through the user's browser with a loopback redirect
(RFC 8252 §7.3), and store the tokens.

Steps (seed, "Reuse access token"; spec §1–§4):
1. discover the ISS, then the other servers: ``--server`` bases, else the ISS's
   ``associated_endpoints`` (spec §1.3), plus the brands bundle's endpoints with ``--brands``;
2. the reuse decision (same AS endpoints, ``auth-multi-aud-token`` everywhere). If it fails,
   every reason is printed and each server gets its own authorization (sequential launches);
3. the scope plan: what is requested and what each server cannot grant;
4. register a public client (RFC 7591) unless ``--client-id``; authorize with PKCE S256,
   receive the callback on 127.0.0.1, check ``state``, exchange the code; store.
The tokens themselves are never printed."""

from __future__ import annotations

import asyncio
import webbrowser
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from rich.console import Console

from smartrealm.appcli.loopback import LoopbackReceiver
from smartrealm.appcli.profile import Connection, Grant, Profile, default_alias
from smartrealm.appcli.report import print_plan, print_reuse, print_servers, print_tokens
from smartrealm.client.auth import (
    AuthorizationRequest,
    exchange_code,
    parse_callback,
    register_client,
)
from smartrealm.client.brands import fetch_brand_endpoints
from smartrealm.client.discovery import SmartConfiguration, discover
from smartrealm.client.planning import ScopePlan, plan_scopes_for
from smartrealm.client.reuse import check_token_reuse
from smartrealm.client.tokens import TokenSet
from smartrealm.core.urls import normalize_url

DEFAULT_SCOPE = "openid fhirUser launch/patient offline_access patient/*.rs"
CLIENT_NAME = "smartrealm app CLI"


class ConnectError(RuntimeError):
    """A step of `app connect` cannot go on (the message says what to do)."""


@dataclass(frozen=True)
class ConnectOptions:
    iss: str
    servers: tuple[str, ...] = ()
    scope: str = DEFAULT_SCOPE
    client_id: str | None = None
    alias: str | None = None
    open_browser: bool = True
    port: int = 0
    timeout: float = 300.0
    brands: bool = False


@dataclass(frozen=True)
class Authorization:
    """One authorization request to make: its servers share one token."""

    configs: tuple[SmartConfiguration, ...]
    scope: str


async def connect(options: ConnectOptions, profile: Profile, console: Console) -> Connection:
    async with httpx.AsyncClient(timeout=30.0) as http:
        with console.status("Discovering the realm…"):
            configs = await discover_servers(http, options)
        print_servers(configs, console)
        decision = check_token_reuse(configs)
        print_reuse(decision, len(configs), console)
        with console.status("Planning scopes (reading each CapabilityStatement)…"):
            plan = await plan_scopes_for(http, options.scope, configs)
        print_plan(plan, console)
        if not plan.scope:
            raise ConnectError("no server can grant any of the requested scopes")
        steps = _authorizations(configs, plan, reuse=decision.possible)
        alias = options.alias or default_alias(options.iss)
        obtained = await _authorize_all(http, options, steps, alias, console)
    connection = Connection(alias, options.iss, plan.scope, tuple(g for g, _ in obtained))
    _store(profile, connection, obtained)
    console.print(f"[green]stored[/green] as alias [bold]{alias}[/bold] in {profile.directory}")
    return connection


def _store(profile: Profile, connection: Connection, obtained: list[tuple[Grant, TokenSet]]
           ) -> None:
    """Only once every authorization succeeded; a replaced alias loses its old tokens."""
    previous = profile.connections().get(connection.alias)
    keep = {grant.key for grant, _ in obtained}
    for grant in previous.grants if previous else ():
        if grant.key not in keep:
            profile.tokens.delete(grant.key)
    for grant, tokens in obtained:
        profile.tokens.save(grant.key, tokens)
    profile.save(connection)


async def discover_servers(http: httpx.AsyncClient, options: ConnectOptions
                           ) -> list[SmartConfiguration]:
    first = await discover(http, options.iss)
    others = list(options.servers) or [e.url for e in first.associated_endpoints]
    if options.brands and first.brand_bundle_url is not None:
        others += [e.address for e in await fetch_brand_endpoints(http, first)]
    seen = {normalize_url(first.base_url)}
    unique = []
    for base in others:
        if normalize_url(base) not in seen:
            seen.add(normalize_url(base))
            unique.append(base)
    rest = await asyncio.gather(*(discover(http, base) for base in unique))
    return [first, *rest]


def _authorizations(configs: Sequence[SmartConfiguration], plan: ScopePlan, *, reuse: bool
                    ) -> list[Authorization]:
    if reuse:
        return [Authorization(tuple(configs), plan.scope)]
    # Fallback: one ordinary SMART authorization per server, each asking only for what
    # that server can grant; a server that can grant nothing is skipped.
    return [Authorization((c,), plan.server(c.base_url).scope) for c in configs
            if plan.server(c.base_url).scope]


async def _authorize_all(http: httpx.AsyncClient, options: ConnectOptions,
                         steps: list[Authorization], alias: str, console: Console
                         ) -> list[tuple[Grant, TokenSet]]:
    obtained = []
    clients: dict[str, str] = {}  # registration endpoint → client_id
    async with LoopbackReceiver(options.port) as receiver:
        console.print(f"listening for the redirect on {receiver.redirect_uri}")
        for index, step in enumerate(steps, start=1):
            if len(steps) > 1:
                console.rule(f"authorization {index} of {len(steps)}: {step.configs[0].base_url}")
            client_id = await _client_id(http, options, step, receiver.redirect_uri, clients,
                                         console)
            tokens = await _authorize(http, options, step, client_id, receiver, console)
            key = alias if len(steps) == 1 else f"{alias}@{step.configs[0].base_url}"
            servers = tuple(c.base_url for c in step.configs)
            obtained.append((Grant(key, client_id, step.configs[0].token_endpoint, servers),
                             tokens))
            print_tokens(tokens, servers, console)
    return obtained


async def _client_id(http: httpx.AsyncClient, options: ConnectOptions, step: Authorization,
                     redirect_uri: str, clients: dict[str, str], console: Console) -> str:
    if options.client_id is not None:
        return options.client_id
    endpoint = step.configs[0].registration_endpoint
    if endpoint is None:
        raise ConnectError(
            f"{step.configs[0].base_url} advertises no registration_endpoint: pass --client-id "
            "of a registered public client whose redirect URI is "
            "http://127.0.0.1:PORT/callback, with --port PORT")
    if endpoint not in clients:
        with console.status("Registering a public client (RFC 7591)…"):
            body = await register_client(http, endpoint, redirect_uris=[redirect_uri],
                                         client_name=CLIENT_NAME, scope=step.scope)
        clients[endpoint] = str(body["client_id"])
        console.print(f"registered public client [bold]{clients[endpoint]}[/bold] "
                      f"with redirect {redirect_uri}")
    return clients[endpoint]


async def _authorize(http: httpx.AsyncClient, options: ConnectOptions, step: Authorization,
                     client_id: str, receiver: LoopbackReceiver, console: Console) -> TokenSet:
    first = step.configs[0]
    request = AuthorizationRequest.create(
        authorization_endpoint=first.authorization_endpoint, client_id=client_id,
        redirect_uri=receiver.redirect_uri, scope=step.scope,
        resources=[c.base_url for c in step.configs])
    _show_authorize_url(request.url, options.open_browser, console)
    with console.status(f"Waiting for the sign-in (up to {options.timeout:.0f} s; "
                        "Ctrl-C cancels)…"):
        try:
            callback = await receiver.wait(options.timeout)
        except TimeoutError:
            raise ConnectError(f"no redirect arrived within {options.timeout:.0f} s") from None
    code = parse_callback(callback, request)
    console.print("callback received, state checked; exchanging the code (PKCE S256)")
    return await exchange_code(http, first.token_endpoint, request, code, client_id=client_id)


def _show_authorize_url(url: str, open_browser: bool, console: Console) -> None:
    opened = open_browser and webbrowser.open(url)
    if opened:
        console.print("opened the authorization page in your browser; if nothing appeared, "
                      "open this URL:")
    else:
        console.print("Open this URL in a browser to sign in:")
    # Plain print: a console would wrap the long URL and break copy-paste; flush so a
    # script reading our output sees it while we wait.
    print(url, flush=True)
