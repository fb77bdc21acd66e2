"""Parse a FHIR search request (http://hl7.org/fhir/R4/search.html) into criteria and
result parameters, and build its paging links.

Unknown parameters are ignored (and left out of the self link, as R4 §3.1.1.4 asks) unless
the client sent ``Prefer: handling=strict``; a known parameter — criterion or result
parameter — with an unsupported modifier or a malformed value is always a 400 (see
search_values.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from smartrealm.core.defaults import SEARCH_MAX_COUNT as MAX_COUNT
from smartrealm.core.defaults import SEARCH_MAX_FORM_FIELDS as MAX_FORM_FIELDS
from smartrealm.fhir.errors import BadRequest, TooCostly, UnsupportedMediaType
from smartrealm.fhir.search.limits import check_search_size
from smartrealm.fhir.search.params import RESULT_PARAMS, SORTABLE_KINDS, SearchParam, search_params
from smartrealm.fhir.search.query import Clause, SortKey
from smartrealm.fhir.search.values import parse_param, split_values

__all__ = ["DEFAULT_COUNT", "MAX_COUNT", "Include", "SearchRequest", "form_params",
           "page_links", "parse_param", "parse_search", "split_values"]

DEFAULT_COUNT = 20
SUMMARIES = ("count", "data", "false", "true", "text")
TOTALS = ("none", "estimate", "accurate")
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Include:
    """``_include=<source>:<param>[:<target>]`` (R4 §3.1.1.5.4). For ``_include`` the
    source is the searched type; for ``_revinclude`` the target is."""

    source: str
    param: SearchParam
    target: str | None


@dataclass(frozen=True)
class SearchRequest:
    resource_type: str
    criteria: tuple[Clause, ...]
    count: int
    offset: int
    used: tuple[tuple[str, str], ...]   # the criteria honoured, as sent (for links)
    sort: tuple[SortKey, ...] = ()
    summary: str | None = None          # "count" | "data" | None (full resources)
    total: str = "accurate"             # "none" | "estimate" | "accurate"
    includes: tuple[Include, ...] = ()
    revincludes: tuple[Include, ...] = ()
    results: tuple[tuple[str, str], ...] = ()  # result parameters honoured (for links)


def parse_search(resource_type: str, params: Sequence[tuple[str, str]], *, base_url: str,
                 strict: bool = False, default_count: int = DEFAULT_COUNT,
                 max_count: int = MAX_COUNT) -> SearchRequest:
    check_search_size(params)  # 400 too-costly before any SQL is built (limits.py)
    criteria: list[Clause] = []
    used: list[tuple[str, str]] = []
    results: list[tuple[str, str]] = []
    for name, raw in params:
        if "\x00" in raw or "\x00" in name:
            raise BadRequest("search parameters must not contain NUL characters")
        if name.partition(":")[0] in RESULT_PARAMS:
            _no_result_modifier(name)
            results.append((name, raw))
        elif raw:  # an empty value means "no criterion" (R4 §3.1.1.4)
            clause = parse_param(resource_type, name, raw, base_url=base_url)
            if clause is None:
                if strict:
                    raise BadRequest(f"unknown search parameter {name!r} for {resource_type}")
                continue
            criteria.append(clause)
            used.append((name, raw))
    return _with_results(SearchRequest(resource_type, tuple(criteria), default_count, 0,
                                       tuple(used)), results, max_count)


def _no_result_modifier(name: str) -> None:
    if ":" in name:
        raise BadRequest(f"modifier :{name.partition(':')[2]} is not supported on "
                         f"{name.partition(':')[0]}")


class _Results:
    """Accumulates the result parameters of one request (R4 §3.1.1.5)."""

    def __init__(self, resource_type: str, count: int, max_count: int) -> None:
        self.resource_type = resource_type
        self.count, self.offset, self.max_count = count, 0, max_count
        self.sort: list[SortKey] = []
        self.summary: str | None = None
        self.total = "accurate"
        self.includes: list[Include] = []
        self.revincludes: list[Include] = []
        self.kept: list[tuple[str, str]] = []

    def take(self, name: str, raw: str) -> None:
        if name == "_count":
            self.count = min(_non_negative(name, raw), self.max_count)
        elif name == "_offset":
            self.offset = _non_negative(name, raw)
        elif name == "_sort":
            self.sort += parse_sort(self.resource_type, raw)
        elif name == "_summary":
            summary = _choice(name, raw, SUMMARIES)
            # _summary=true/text: FHIR lets a server return more than asked (R4
            # §3.1.1.5.8); we return whole resources rather than guess the summary elements.
            self.summary = summary if summary in ("count", "data") else None
        elif name == "_total":
            self.total = _choice(name, raw, TOTALS)
        elif name == "_include":
            self.includes.append(parse_include(self.resource_type, raw))
        elif name == "_revinclude":
            self.revincludes.append(parse_revinclude(self.resource_type, raw))
        else:
            return  # _format, _pretty: we only speak JSON
        if name not in ("_count", "_offset"):
            self.kept.append((name, raw))


def _with_results(request: SearchRequest, results: list[tuple[str, str]],
                  max_count: int) -> SearchRequest:
    acc = _Results(request.resource_type, request.count, max_count)
    for name, raw in results:
        if raw:  # an empty value is no parameter at all
            acc.take(name, raw)
    return SearchRequest(request.resource_type, request.criteria, acc.count, acc.offset,
                         request.used, tuple(acc.sort), acc.summary, acc.total,
                         tuple(acc.includes), tuple(acc.revincludes), tuple(acc.kept))


def parse_sort(resource_type: str, raw: str) -> list[SortKey]:
    """``_sort=a,-b`` (R4 §3.1.1.5.2): ``-`` sorts descending."""
    keys: list[SortKey] = []
    for item in split_values(raw):
        descending = item.startswith("-")
        name = item[1:] if descending else item
        if name in ("_id", "_lastUpdated"):
            keys.append(SortKey(name, name.lstrip("_") if name == "_id" else "lastUpdated",
                                descending))
            continue
        param = search_params(resource_type).get(name)
        if param is None or param.kind not in SORTABLE_KINDS:
            raise BadRequest(f"_sort: {resource_type} cannot be sorted by {name!r}")
        keys.append(SortKey(param.name, param.kind, descending))
    return keys


def parse_include(resource_type: str, raw: str) -> Include:
    """``_include=<searched type>:<reference param>[:<target type>]``."""
    include = _include_spec("_include", raw)
    if include.source != resource_type:
        raise BadRequest(f"_include: {raw!r} does not start with {resource_type}")
    return include


def parse_revinclude(resource_type: str, raw: str) -> Include:
    """``_revinclude=<referring type>:<reference param>[:<searched type>]``."""
    include = _include_spec("_revinclude", raw)
    if include.param.target not in (None, resource_type) or \
            include.target not in (None, resource_type):
        raise BadRequest(f"_revinclude: {raw!r} cannot refer to {resource_type}")
    return include


def _include_spec(name: str, raw: str) -> Include:
    parts = raw.split(":")
    if len(parts) not in (2, 3):
        raise BadRequest(f"{name}: {raw!r} is not <type>:<search parameter>[:<target type>] "
                         "(wildcards are not supported)")
    param = search_params(parts[0]).get(parts[1])
    if param is None or param.kind != "reference":
        raise BadRequest(f"{name}: {parts[0]} has no reference search parameter "
                         f"{parts[1]!r}")
    target = parts[2] if len(parts) == 3 else None
    if target is not None and param.target not in (None, target):
        raise BadRequest(f"{name}: {parts[0]}:{parts[1]} does not refer to {target}")
    return Include(parts[0], param, target)


def page_links(base_url: str, search: SearchRequest, total: int | None,
               more: bool | None = None) -> list[dict[str, str]]:
    """self / first / previous / next / last as absolute URLs on this server's base that
    repeat the honoured parameters (R4 §3.1.1.5 "Paging"). ``last`` only when the total is
    known; ``more`` says whether a next page exists when it is not."""

    def url(offset: int) -> str:
        query = [*search.used, *search.results, ("_count", str(search.count)),
                 ("_offset", str(offset))]
        return f"{base_url}/{search.resource_type}?{urlencode(query)}"

    count, offset = search.count, search.offset
    links = [{"relation": "self", "url": url(offset)}]
    if count <= 0 or search.summary == "count":
        return links
    has_next = more if more is not None else total is not None and offset + count < total
    links.append({"relation": "first", "url": url(0)})
    if offset > 0:
        links.append({"relation": "previous", "url": url(max(0, offset - count))})
    if has_next:
        links.append({"relation": "next", "url": url(offset + count)})
    if total is not None:
        links.append({"relation": "last", "url": url(max(0, (total - 1) // count * count))})
    return links


def form_params(content_type: str | None, body: bytes) -> list[tuple[str, str]]:
    """The parameters of ``POST [type]/_search`` (R4 http.html#search: "the parameters
    are in the body as application/x-www-form-urlencoded"); an empty body carries none."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if not body and not media:
        return []
    if media != FORM_MEDIA_TYPE:
        raise UnsupportedMediaType(f"a search body must be {FORM_MEDIA_TYPE}, not "
                                   f"{media or 'untyped'}")
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict",
                         max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:  # a ValueError too: caught first
        raise BadRequest("the search body is not valid UTF-8 form data") from None
    except ValueError:  # parse_qsl: "Max number of fields exceeded"
        raise TooCostly(f"the search body has more than {MAX_FORM_FIELDS} fields") from None


def _choice(name: str, raw: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}")
    return raw


def _non_negative(name: str, raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(raw)
