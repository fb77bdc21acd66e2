"""Comparing and intersecting SMART resource scopes (spec §5.1, §5.3).

A scope grants a set of (context, type, letter, constraint) permissions. ``covers(a, b)``
says every access ``b`` grants is also granted by ``a``; ``meet(a, b)`` is the largest single
scope both grant (None when they share nothing). The AS uses them to intersect what an app
asked for with the client's registered ceiling, the server's support, the user's choices
and remembered consents, without ever widening a request.
"""

from __future__ import annotations

from collections.abc import Iterable

from smartrealm.oauth.scopes import LETTERS, ResourceScope

# §5.1 v1 compatibility: the three v1 suffixes and the letters they stand for.
V1_SUFFIX = {"rs": "read", "cud": "write", "cruds": "*"}


def build_scope(context: str, resource_type: str, letters: Iterable[str],
                params: tuple[tuple[str, str], ...] = (), *,
                prefer_v1: bool = False) -> ResourceScope:
    """A scope from its parts. With ``prefer_v1`` and no constraint, letters that a v1
    suffix expresses keep the v1 spelling (§5.1: servers SHOULD return v1 scopes when v1
    scopes were requested)."""
    kept = frozenset(letters)
    suffix = "".join(ch for ch in LETTERS if ch in kept)
    if prefer_v1 and not params and suffix in V1_SUFFIX:
        raw = f"{context}/{resource_type}.{V1_SUFFIX[suffix]}"
        return ResourceScope(context, resource_type, kept, (), raw, 1)
    query = "&".join(f"{k}={v}" for k, v in params)
    raw = f"{context}/{resource_type}.{suffix}" + (f"?{query}" if query else "")
    return ResourceScope(context, resource_type, kept, params, raw, 2)


def with_letters(scope: ResourceScope, letters: Iterable[str]) -> ResourceScope | None:
    """``scope`` limited to ``letters``; the same object when nothing is removed (so the
    app's own spelling survives), None when no letter is left."""
    kept = scope.permissions & frozenset(letters)
    if not kept:
        return None
    if kept == scope.permissions:
        return scope
    return build_scope(scope.context, scope.resource_type, kept, scope.params,
                       prefer_v1=scope.version == 1)


def covers(a: ResourceScope, b: ResourceScope) -> bool:
    """Does ``a`` grant everything ``b`` grants? Same context, ``a``'s type is ``*`` or
    ``b``'s, ``b``'s letters are ``a``'s, and ``a``'s constraints are among ``b``'s (a
    granular constraint only ever narrows)."""
    return (a.context == b.context and a.resource_type in ("*", b.resource_type)
            and b.permissions <= a.permissions and set(a.params) <= set(b.params))


def meet(a: ResourceScope, b: ResourceScope) -> ResourceScope | None:
    """The largest scope granted by both ``a`` and ``b``; ``a`` itself when ``b`` covers
    it. None when they share nothing, or when their constraints are unrelated (neither set
    of ``?param=value`` pairs contains the other)."""
    if covers(b, a):
        return a
    if a.context != b.context:
        return None
    if a.resource_type == b.resource_type or b.resource_type == "*":
        resource_type = a.resource_type
    elif a.resource_type == "*":
        resource_type = b.resource_type
    else:
        return None
    letters = a.permissions & b.permissions
    pa, pb = set(a.params), set(b.params)
    if not letters or not (pa <= pb or pb <= pa):
        return None
    params = b.params if pa <= pb else a.params
    return build_scope(a.context, resource_type, letters, params, prefer_v1=a.version == 1)


def minimal(scopes: Iterable[ResourceScope]) -> tuple[ResourceScope, ...]:
    """Duplicates and scopes covered by another one removed; first occurrence order."""
    unique: dict[str, ResourceScope] = {}
    for scope in scopes:
        unique.setdefault(scope.raw, scope)
    found = list(unique.values())
    return tuple(s for i, s in enumerate(found)
                 if not any(j != i and covers(o, s) and not (covers(s, o) and j > i)
                            for j, o in enumerate(found)))


def covered_by_any(scope: ResourceScope, by: Iterable[ResourceScope]) -> bool:
    return any(covers(other, scope) for other in by)
