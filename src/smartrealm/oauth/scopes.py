"""SMART scopes parsed into values (spec §5.1, §5.2).

Grammar (v2): ``(patient|user|system)/(Type|*).<cruds>[?param=value(&param=value)*]`` where
the permission letters are a non-empty, ordered subset of ``c r u d s``. v1 suffixes map to v2:
``.read`` ⇒ ``rs``, ``.write`` ⇒ ``cud``, ``.*`` ⇒ ``cruds``. Every other scope (``launch``,
``openid``, ``fhirUser``, ``offline_access``, extension scopes ...) is kept as-is in ``other``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from smartrealm.core.fhir_ids import is_resource_type

CONTEXTS = ("patient", "user", "system")
LETTERS = "cruds"
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
# §5.1: the suffix must keep the order c r u d s (so ".read" is never read as ".rd").
_V2_SUFFIX = re.compile(r"^c?r?u?d?s?$")
_RESOURCE_SCOPE = re.compile(r"^(patient|user|system)/([^./?]+)\.([^?]+)(?:\?(.*))?$")


class ScopeSyntaxError(ValueError):
    """A scope that looks like a SMART resource scope but breaks the grammar."""


@dataclass(frozen=True)
class ResourceScope:
    context: str
    resource_type: str
    permissions: frozenset[str]
    params: tuple[tuple[str, str], ...] = ()
    raw: str = ""
    version: int = 2

    def covers(self, resource_type: str, letter: str) -> bool:
        """Does this scope grant ``letter`` on ``resource_type``? Wildcard ``*`` covers every
        type, including types added later (§5.1)."""
        type_ok = self.resource_type in ("*", resource_type)
        return type_ok and letter in self.permissions

    @property
    def letters(self) -> str:
        return "".join(ch for ch in LETTERS if ch in self.permissions)

    def with_permissions(self, letters: str) -> ResourceScope:
        """The same scope narrowed to ``letters``, written in v2 form."""
        kept = frozenset(letters) & self.permissions
        query = "&".join(f"{k}={v}" for k, v in self.params)
        suffix = "".join(ch for ch in LETTERS if ch in kept)
        raw = f"{self.context}/{self.resource_type}.{suffix}" + (f"?{query}" if query else "")
        return ResourceScope(self.context, self.resource_type, kept, self.params, raw, 2)


@dataclass(frozen=True)
class ScopeSet:
    resource: tuple[ResourceScope, ...] = ()
    other: tuple[str, ...] = ()
    raw: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return " ".join(self.raw)

    def __contains__(self, scope: object) -> bool:
        return scope in self.raw

    def for_type(self, resource_type: str, letter: str) -> list[ResourceScope]:
        return [s for s in self.resource if s.covers(resource_type, letter)]

    def contexts(self) -> set[str]:
        return {s.context for s in self.resource}

    def has_patient_scopes(self) -> bool:
        return any(s.context == "patient" for s in self.resource)


def parse_scope(token: str) -> ResourceScope | None:
    """Parse one scope token. None for non-resource scopes; ScopeSyntaxError for a scope that
    starts like a resource scope but is malformed."""
    context = token.split("/", 1)[0]
    if context not in CONTEXTS or "/" not in token:
        return None
    match = _RESOURCE_SCOPE.match(token)
    if match is None:
        raise ScopeSyntaxError(f"malformed resource scope {token!r}")
    _, resource_type, suffix, query = match.groups()
    if resource_type != "*" and not is_resource_type(resource_type):
        raise ScopeSyntaxError(f"bad resource type in scope {token!r}")
    letters, version = _permissions(token, suffix)
    params = _params(token, query) if query is not None else ()
    if params and version == 1:
        raise ScopeSyntaxError(f"v1 scope {token!r} cannot carry query parameters")
    return ResourceScope(context, resource_type, frozenset(letters), params, token, version)


def _permissions(token: str, suffix: str) -> tuple[str, int]:
    if suffix in V1_PERMISSIONS:
        return V1_PERMISSIONS[suffix], 1
    if not suffix or not _V2_SUFFIX.match(suffix):
        raise ScopeSyntaxError(f"permissions {suffix!r} in {token!r} are not an ordered "
                               "subset of 'cruds'")
    return suffix, 2


def _params(token: str, query: str) -> tuple[tuple[str, str], ...]:
    # §14.25: accept granular values raw or percent-encoded (`|` and `:` appear in them).
    pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
    if not pairs or any(not k or not v for k, v in pairs):
        raise ScopeSyntaxError(f"malformed query in scope {token!r}")
    return tuple((unquote(k), unquote(v)) for k, v in pairs)


def parse_scopes(scope: str) -> ScopeSet:
    """Parse a space-separated scope string; duplicates are dropped, order kept."""
    seen: dict[str, None] = {}
    for token in scope.split():
        seen.setdefault(token, None)
    resource: list[ResourceScope] = []
    other: list[str] = []
    for token in seen:
        parsed = parse_scope(token)
        if parsed is None:
            other.append(token)
        else:
            resource.append(parsed)
    return ScopeSet(tuple(resource), tuple(other), tuple(seen))
