"""Reads, searches and history through the proxy (SMART §5.1, §5.3 "Enforcement at the RS").

Each interaction is authorized exactly as the built-in server does it (fhir/access.py
``authorize``: the letter, the context, this server's patient id, granular constraints),
then forwarded with the proxy's own credentials, and what comes back is checked resource by
resource (rules.py) before it leaves: a read outside the permit is 403, a search entry
outside it is dropped, and then nothing derived from the unfiltered set — ``total``, the
``last`` link — is passed on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool

from smartrealm.fhir.access import Permit, authorize, check_named_patients
from smartrealm.fhir.bodies import check_id
from smartrealm.fhir.errors import Forbidden, NotFound
from smartrealm.fhir.http.reply import FhirResponse
from smartrealm.fhir.proxy.rules import ScopeJudge, pushdown
from smartrealm.fhir.proxy.screen import refuse, screen_params
from smartrealm.fhir.proxy.upstream import BadGateway, Rewriter, Upstream, UpstreamReply
from smartrealm.fhir.search.parse import parse_param
from smartrealm.fhir.search.query import Clause
from smartrealm.fhir.settings import FhirSettings
from smartrealm.guard import AccessContext

_CRITERIA_SPECIAL = ("_id", "_lastUpdated")


class ProxyReads:
    def __init__(self, settings: FhirSettings, upstream: Upstream, judge: ScopeJudge) -> None:
        self.settings = settings
        self.base = settings.base_url
        self.upstream = upstream
        self.judge = judge
        self.rewriter = Rewriter(upstream.base_url, self.base)

    def check_type(self, resource_type: str) -> None:
        """Only types whose compartment and search rules the access layer knows
        (fhir/search/params.py): for any other, a ``patient/`` scope could not be confined."""
        if resource_type not in self.settings.resource_types:
            raise NotFound(f"this server does not serve {resource_type!r} resources")

    def relay(self, reply: UpstreamReply) -> FhirResponse:
        body = self.rewriter.outward(reply.body)
        if body is not None and not isinstance(body, dict):
            raise BadGateway("the upstream server answered something that is not a resource")
        return FhirResponse(body, reply.status, self.rewriter.outward(reply.headers))

    async def allows(self, permit: Permit, resource: Any) -> bool:
        return await run_in_threadpool(self.judge.allows, permit, resource)

    # ------------------------------------------------------------------ read, vread

    async def read(self, ctx: AccessContext, resource_type: str, resource_id: str,
                   version: str | None = None) -> FhirResponse:
        self.check_type(resource_type)
        permit = authorize(ctx, resource_type, "r", base_url=self.base)
        check_id(resource_id)
        path = f"{resource_type}/{resource_id}"
        if version is not None:
            path += f"/_history/{check_id(version)}"
        reply = await self.upstream.call("GET", path)
        if reply.status == 200 and not await self.allows(permit, reply.body):
            raise Forbidden(f"the token does not allow reading {resource_type}/{resource_id}")
        return self.relay(reply)

    # ------------------------------------------------------------------ search

    async def search(self, ctx: AccessContext, resource_type: str,
                     params: Sequence[tuple[str, str]], prefer: str | None) -> FhirResponse:
        self.check_type(resource_type)
        screen_params(params)
        permit = authorize(ctx, resource_type, "s", base_url=self.base)
        check_named_patients(permit, ctx, self._criteria(resource_type, params))
        pushed, exact = pushdown(permit)
        if not exact and _count_only(params):
            raise refuse("counting matches under these scopes")
        sent = [(name, self.rewriter.inward(value)) for name, value in params] + pushed
        reply = await self.upstream.call("GET", resource_type, params=sent,
                                         headers=_prefer(prefer))
        if reply.status != 200:
            return self.relay(reply)
        return await self._filtered(permit, reply, exact)

    def _criteria(self, resource_type: str, params: Sequence[tuple[str, str]]
                  ) -> list[Clause]:
        """The client's criteria as the built-in server parses them (400 for a malformed
        one), to refuse a patient-confined search that names only other patients."""
        clauses = []
        for name, value in params:
            if name.startswith("_") and name.partition(":")[0] not in _CRITERIA_SPECIAL:
                continue
            clause = parse_param(resource_type, name, value, base_url=self.base)
            if clause is not None:
                clauses.append(clause)
        return clauses

    async def _filtered(self, permit: Permit, reply: UpstreamReply, exact: bool) -> FhirResponse:
        bundle = _bundle(reply.body)
        entries = [e for e in bundle.get("entry", []) if isinstance(e, dict)]
        outcomes = [e for e in entries if _is_outcome(e)]
        matches = [e for e in entries if not _is_outcome(e)
                   and (e.get("search") or {}).get("mode", "match") == "match"]
        verdicts = await run_in_threadpool(self.judge.allowed, permit,
                                           [e.get("resource") for e in matches])
        kept = [e for e, ok in zip(matches, verdicts, strict=True) if ok]
        dropped = len(entries) - len(outcomes) - len(kept)
        filtered = {**bundle, "entry": [*kept, *outcomes]}
        if not filtered["entry"]:
            del filtered["entry"]
        if dropped or not exact:
            _forget_totals(filtered)
        return self.relay(UpstreamReply(200, filtered, reply.headers))

    # ------------------------------------------------------------------ history

    async def instance_history(self, ctx: AccessContext, resource_type: str,
                               resource_id: str, params: Sequence[tuple[str, str]]) -> FhirResponse:
        """Under a restricted permit: the resource must be inside it now, and only
        versions that are themselves inside it are listed (as the built-in server)."""
        self.check_type(resource_type)
        screen_params(params)
        permit = authorize(ctx, resource_type, "r", base_url=self.base)
        path = f"{resource_type}/{check_id(resource_id)}"
        if permit.restriction is not None:
            current = await self.upstream.call("GET", path)
            if current.status == 404:
                return self.relay(current)
            if current.status != 200 or not await self.allows(permit, current.body):
                raise Forbidden(f"the token does not allow the history of {path}")
        reply = await self.upstream.call("GET", f"{path}/_history", params=list(params))
        if reply.status != 200 or permit.restriction is None:
            return self.relay(reply)
        return await self._filtered(permit, reply, exact=False)

    async def type_history(self, ctx: AccessContext, resource_type: str,
                           params: Sequence[tuple[str, str]]) -> FhirResponse:
        self.check_type(resource_type)
        screen_params(params)
        permit = authorize(ctx, resource_type, "s", base_url=self.base)
        if permit.restriction is not None:
            raise refuse("type history under patient/ or granular scopes")
        return self.relay(await self.upstream.call("GET", f"{resource_type}/_history",
                                                   params=list(params)))


def _bundle(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise BadGateway("the upstream server did not answer a search with a Bundle")
    return body


def _is_outcome(entry: dict[str, Any]) -> bool:
    resource = entry.get("resource")
    return (entry.get("search") or {}).get("mode") == "outcome" and isinstance(
        resource, dict) and resource.get("resourceType") == "OperationOutcome"


def _forget_totals(bundle: dict[str, Any]) -> None:
    """A total or a ``last`` link computed over entries the token may not see would tell
    how many there are (docs/behaviour.md: no totals or paging links that leak)."""
    bundle.pop("total", None)
    links = [link for link in bundle.get("link", [])
             if isinstance(link, dict) and link.get("relation") != "last"]
    if links:
        bundle["link"] = links
    else:
        bundle.pop("link", None)


def _count_only(params: Sequence[tuple[str, str]]) -> bool:
    return any((n == "_summary" and v == "count") or (n == "_count" and v.strip() == "0")
               for n, v in params)


def _prefer(prefer: str | None) -> dict[str, str]:
    return {"Prefer": prefer} if prefer else {}
