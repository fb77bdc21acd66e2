"""What `smartrealm app` prints: the servers, the reuse decision, the scope plan and the
per-server view of a token. Never the access, refresh or id token itself."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from smartrealm.appcli.profile import Connection
from smartrealm.client.discovery import SmartConfiguration
from smartrealm.client.planning import ScopePlan
from smartrealm.client.reuse import MULTI_AUD_CAPABILITY, ReuseDecision
from smartrealm.client.tokens import TokenSet


def print_servers(configs: Sequence[SmartConfiguration], console: Console) -> None:
    table = Table(title="servers", title_justify="left")
    for column in ("FHIR base", "authorization endpoint", MULTI_AUD_CAPABILITY):
        table.add_column(column)
    for config in configs:
        multi = "yes" if config.has_capability(MULTI_AUD_CAPABILITY) else "no"
        table.add_row(config.base_url, config.authorization_endpoint, multi)
    console.print(table)


def print_reuse(decision: ReuseDecision, count: int, console: Console) -> None:
    if decision.possible:
        console.print(f"[green]token reuse: possible[/green] — one token for all {count} "
                      "servers (same authorization and token endpoints, every server "
                      f"advertises {MULTI_AUD_CAPABILITY})")
        return
    console.print("[yellow]token reuse: not possible[/yellow], because:")
    for reason in decision.reasons:
        console.print(f"  - {reason}")
    console.print("  falling back to one authorization per server")


def print_plan(plan: ScopePlan, console: Console) -> None:
    console.print(f"scope plan — request: [bold]{plan.scope}[/bold]")
    for server in plan.servers:
        console.print(f"  {server.base_url}: can grant {server.scope or '(nothing)'}")
        for refusal in server.refused:
            console.print(f"    cannot grant {refusal.scope} ({refusal.reason})")


def print_tokens(tokens: TokenSet, servers: Sequence[str], console: Console) -> None:
    console.print(f"  expires: {expiry_text(tokens)}; refresh token: "
                  f"{'yes' if tokens.refresh_token else 'no'}")
    for base in servers:
        scopes = " ".join(tokens.scopes_for(base)) or "(none)"
        patient = tokens.patient_id_for(base) or "(none)"
        console.print(f"  {base}\n    patient {patient}\n    scopes  {scopes}")


def expiry_text(tokens: TokenSet, now: float | None = None) -> str:
    if tokens.expires_at is None:
        return "unknown (no expires_in)"
    moment = datetime.fromtimestamp(tokens.expires_at, UTC).isoformat(timespec="seconds")
    left = int(tokens.expires_at - (time.time() if now is None else now))
    if left <= 0:
        return f"expired {_duration(-left)} ago ({moment})"
    return f"in {_duration(left)} ({moment})"


def _duration(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def print_connection(connection: Connection, tokens: dict[str, TokenSet | None],
                     console: Console) -> None:
    console.rule(f"[bold]{connection.alias}[/bold] — {connection.iss}")
    for grant in connection.grants:
        token = tokens.get(grant.key)
        console.print(f"client_id {grant.client_id} at {grant.token_endpoint}")
        if token is None:
            console.print("  [yellow]no stored token[/yellow] (run `smartrealm app connect`)")
            continue
        console.print(f"  audience: {', '.join(audience(token, grant.servers))}")
        print_tokens(token, audience(token, grant.servers), console)


def audience(token: TokenSet, asked: Sequence[str]) -> list[str]:
    """The servers the token serves: its authorization_details locations (the AS leaves a
    server that would get nothing out), else the servers that were asked for."""
    locations = [loc for entry in token.authorization_details
                 for loc in entry.get("locations", []) if isinstance(loc, str)]
    return locations or list(asked)
