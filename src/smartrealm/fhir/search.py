"""Parse FHIR search parameters (http://hl7.org/fhir/R4/search.html) into query criteria.

Unknown parameters are ignored (and left out of the self link, as R4 §3.1.1.4 asks) unless
the client sent ``Prefer: handling=strict``; a known parameter with an unsupported modifier
or a malformed value is always a 400, because silently dropping it would widen the result."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from smartrealm.realm.config import normalize_url

from .errors import BadRequest
from .indexing import parse_local_reference
from .params import RESULT_PARAMS, SearchParam, search_params
from .query import (
    Clause,
    DateValue,
    IdValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    Value,
)

DEFAULT_COUNT = 20
MAX_COUNT = 200
_DATE = re.compile(r"^(\d{4})(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")
_DATE_PREFIXES = ("eq", "lt", "le", "gt", "ge")


@dataclass(frozen=True)
class SearchRequest:
    resource_type: str
    criteria: tuple[Clause, ...]
    count: int
    offset: int
    used: tuple[tuple[str, str], ...]   # the parameters honoured, as sent (for links)


def parse_search(resource_type: str, params: Sequence[tuple[str, str]], *, base_url: str,
                 strict: bool = False, default_count: int = DEFAULT_COUNT,
                 max_count: int = MAX_COUNT) -> SearchRequest:
    criteria: list[Clause] = []
    used: list[tuple[str, str]] = []
    count, offset = default_count, 0
    for name, raw in params:
        if name == "_count":
            count = min(_non_negative(name, raw), max_count)
        elif name == "_offset":
            offset = _non_negative(name, raw)
        elif name in RESULT_PARAMS or not raw:
            continue  # _format: we only speak JSON; an empty value means "no criterion"
        else:
            clause = parse_param(resource_type, name, raw, base_url=base_url)
            if clause is None:
                if strict:
                    raise BadRequest(f"unknown search parameter {name!r} for {resource_type}")
                continue
            criteria.append(clause)
            used.append((name, raw))
    return SearchRequest(resource_type, tuple(criteria), count, offset, tuple(used))


def parse_param(resource_type: str, name: str, raw: str, *, base_url: str) -> Clause | None:
    """One ``name[:modifier]=value[,value]`` as a Clause; None if the name is unknown."""
    base_name, _, modifier = name.partition(":")
    if base_name == "_id":
        _no_modifier(name, modifier)
        return Clause("_id", "id", tuple(IdValue(v) for v in split_values(raw)))
    param = search_params(resource_type).get(base_name)
    if param is None:
        return None
    values = tuple(_value(param, modifier, v, base_url) for v in split_values(raw))
    return Clause(param.name, param.kind, values)


def split_values(raw: str) -> list[str]:
    """Split on commas that are not escaped as ``\\,`` (R4 §3.1.1.4.7 "Escaping")."""
    parts = re.split(r"(?<!\\),", raw)
    return [p.replace("\\,", ",") for p in parts if p]


def _value(param: SearchParam, modifier: str, raw: str, base_url: str) -> Value:
    if param.kind == "token":
        _no_modifier(param.name, modifier)
        return parse_token(raw)
    if param.kind == "reference":
        return parse_reference(param, modifier, raw, base_url)
    if param.kind == "string":
        if modifier not in ("", "contains"):
            raise BadRequest(f"modifier :{modifier} is not supported on {param.name}")
        return StringValue(raw.lower(), modifier or "prefix")
    _no_modifier(param.name, modifier)
    return parse_date(param.name, raw)


def parse_token(raw: str) -> TokenValue:
    if "|" not in raw:
        return TokenValue(None, raw)
    system, code = raw.split("|", 1)
    return TokenValue(system, code or None)


def parse_reference(param: SearchParam, modifier: str, raw: str,
                    base_url: str) -> ReferenceValue:
    """``Type/id``, a bare ``id`` (of the param's target type), or an absolute URL; on our
    own base the URL is the same as the relative reference."""
    if modifier and not modifier[:1].isupper():
        raise BadRequest(f"modifier :{modifier} is not supported on {param.name}")
    own = normalize_url(base_url) + "/"
    if "://" in raw:
        if not normalize_url(raw).startswith(own):
            return ReferenceValue(None, None, url=raw)
        raw = normalize_url(raw)[len(own):]
    local = parse_local_reference(raw)
    if local is None:
        if "/" in raw:
            raise BadRequest(f"{param.name}: {raw!r} is not a reference")
        local = (modifier or param.target or "", raw)
    wanted = param.target or modifier or None
    if wanted is not None and local[0] != wanted:
        raise BadRequest(f"{param.name} refers to {wanted}, not {local[0]}")
    return ReferenceValue(local[0] or None, local[1])


def parse_date(name: str, raw: str) -> DateValue:
    prefix, value = ("eq", raw)
    if raw[:2].isalpha():
        prefix, value = raw[:2], raw[2:]
    match = _DATE.match(value)
    if prefix not in _DATE_PREFIXES or match is None:
        raise BadRequest(f"{name}: {raw!r} is not a supported date search (use "
                         "[eq|lt|le|gt|ge]YYYY[-MM[-DD]])")
    year, month, day = match.group(1), match.group(3), match.group(5)
    lo = f"{year}-{month or '01'}-{day or '01'}"
    hi = f"{year}-{month or '12'}-{day or '31'}"
    return DateValue(prefix, lo, hi)


def page_links(base_url: str, search: SearchRequest, total: int) -> list[dict[str, str]]:
    """self / next / previous as absolute URLs (R4 §3.1.1.5 "Paging")."""

    def url(offset: int) -> str:
        query = [*search.used, ("_count", str(search.count)), ("_offset", str(offset))]
        return f"{base_url}/{search.resource_type}?{urlencode(query)}"

    links = [{"relation": "self", "url": url(search.offset)}]
    if search.count > 0 and search.offset + search.count < total:
        links.append({"relation": "next", "url": url(search.offset + search.count)})
    if search.offset > 0:
        links.append({"relation": "previous",
                      "url": url(max(0, search.offset - max(search.count, 1)))})
    return links


def _non_negative(name: str, raw: str) -> int:
    if not raw.isdigit() or len(raw) > 9:
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(raw)


def _no_modifier(name: str, modifier: str) -> None:
    if modifier:
        raise BadRequest(f"modifier :{modifier} is not supported on {name.partition(':')[0]}")
