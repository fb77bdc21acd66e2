"""Create, update and delete through the proxy (SMART §5.1; docs/behaviour.md "Who may
write", which the proxy applies unchanged).

The incoming resource is validated as the built-in server validates it (400/422) and must be
inside the permit; for update and delete the current version is fetched from the upstream
and must be inside it too. The write is then pinned to that version with ``If-Match``, so a
version that changed after the check is never overwritten (the upstream answers 412)."""

from __future__ import annotations

from smartrealm.fhir.access import Permit, authorize
from smartrealm.fhir.bodies import check_id, for_update
from smartrealm.fhir.errors import BadRequest, Forbidden, MethodNotAllowed, PreconditionFailed
from smartrealm.fhir.http.reply import FhirResponse
from smartrealm.fhir.interactions import writable
from smartrealm.fhir.linking import check_link_kept, guard_link
from smartrealm.fhir.proxy.reads import ProxyReads
from smartrealm.fhir.proxy.upstream import UpstreamReply
from smartrealm.fhir.validation import parse_json, validate_resource
from smartrealm.fhir.versioning import parse_if_match
from smartrealm.guard import AccessContext


class ProxyWrites:
    def __init__(self, reads: ProxyReads) -> None:
        self.reads = reads
        self.upstream = reads.upstream
        self.base = reads.base

    def check_writable(self, resource_type: str) -> None:
        self.reads.check_type(resource_type)
        if not writable(self.reads.settings.server.profile):
            raise MethodNotAllowed(f"this server is read-only ({resource_type} cannot be "
                                   "written)")

    def permit(self, ctx: AccessContext, resource_type: str, letter: str) -> Permit:
        permit = authorize(ctx, resource_type, letter, base_url=self.base)
        system = self.reads.settings.realm.patient_identifier_system
        return guard_link(permit, ctx, letter, system)

    async def create(self, ctx: AccessContext, resource_type: str, body: bytes,
                     prefer: str | None) -> FhirResponse:
        self.check_writable(resource_type)
        permit = self.permit(ctx, resource_type, "c")
        resource = validate_resource(parse_json(body), resource_type)
        if not await self.reads.allows(permit, resource):
            raise Forbidden("the token's scopes do not allow creating this resource")
        check_link_kept(permit, None, resource)
        return self.reads.relay(await self.upstream.call(
            "POST", resource_type, content=body, headers=_prefer(prefer)))

    async def update(self, ctx: AccessContext, resource_type: str, resource_id: str,
                     body: bytes, if_match: str | None, prefer: str | None) -> FhirResponse:
        self.check_writable(resource_type)
        permit = self.permit(ctx, resource_type, "u")
        check_id(resource_id)
        expected = parse_if_match(if_match)
        resource = for_update(validate_resource(parse_json(body), resource_type), resource_id)
        if not await self.reads.allows(permit, resource):
            raise Forbidden("the token's scopes do not allow this version of the resource")
        current = await self.upstream.call("GET", f"{resource_type}/{resource_id}")
        if current.status == 200:
            if not await self.reads.allows(permit, current.body):
                raise Forbidden(f"the token's scopes do not allow updating "
                                f"{resource_type}/{resource_id}")
            expected = _pin(current, expected)
        elif current.status not in (404, 410):
            return self.reads.relay(current)
        check_link_kept(permit, current.body if current.status == 200 else None, resource)
        headers = _prefer(prefer) | _if_match(expected)
        return self.reads.relay(await self.upstream.call(
            "PUT", f"{resource_type}/{resource_id}", content=body, headers=headers))

    async def delete(self, ctx: AccessContext, resource_type: str, resource_id: str,
                     if_match: str | None) -> FhirResponse:
        self.check_writable(resource_type)
        permit = authorize(ctx, resource_type, "d", base_url=self.base)
        check_id(resource_id)
        expected = parse_if_match(if_match)
        path = f"{resource_type}/{resource_id}"
        current = await self.upstream.call("GET", path)
        if current.status == 200:
            if not await self.reads.allows(permit, current.body):
                raise Forbidden(f"the token's scopes do not allow deleting {path}")
            expected = _pin(current, expected)
        elif current.status not in (404, 410):
            return self.reads.relay(current)
        return self.reads.relay(await self.upstream.call("DELETE", path,
                                                         headers=_if_match(expected)))


def _pin(current: UpstreamReply, expected: int | None) -> int | None:
    """The version that was checked; the client's ``If-Match`` must name it (412)."""
    version = _version_of(current)
    if expected is not None and version is not None and expected != version:
        raise PreconditionFailed(f'the current version is W/"{version}", not W/"{expected}"')
    return version if version is not None else expected


def _version_of(reply: UpstreamReply) -> int | None:
    try:
        return parse_if_match(reply.headers.get("etag"))
    except BadRequest:  # an upstream ETag that is not a version: nothing to pin to
        return None


def _if_match(version: int | None) -> dict[str, str]:
    return {} if version is None else {"If-Match": f'W/"{version}"'}


def _prefer(prefer: str | None) -> dict[str, str]:
    return {"Prefer": prefer} if prefer else {}
