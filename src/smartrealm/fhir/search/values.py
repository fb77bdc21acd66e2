"""One search criterion, ``name[:modifier]=value[,value]``, parsed into a Clause
(http://hl7.org/fhir/R4/search.html §3.1.1.4 "Search parameter types").

Decision (kept from the first version, see docs/behaviour.md): a known parameter with an
unsupported modifier or a malformed value is always a 400, also without ``Prefer:
handling=strict``, because silently dropping it would widen the result. Supported modifiers:
``:missing`` (every type), ``:exact`` and ``:contains`` (string), ``:[Type]`` (reference)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from smartrealm.core.fhir_ids import is_resource_type
from smartrealm.core.urls import normalize_url
from smartrealm.fhir.errors import BadRequest
from smartrealm.fhir.search.dates import parse_range
from smartrealm.fhir.search.indexing import fold, parse_local_reference
from smartrealm.fhir.search.params import SearchParam, search_params
from smartrealm.fhir.search.query import (
    Clause,
    DateValue,
    IdValue,
    MissingValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    Value,
)

DATE_PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb")
QUANTITY_PREFIXES = (*DATE_PREFIXES, "ap")
_NUMBER = re.compile(r"^[+-]?(\d{1,30}(\.\d{0,30})?|\.\d{1,30})([eE][+-]?\d{1,3})?$")
_MAX_NUMBER = Decimal("1e300")


def parse_param(resource_type: str, name: str, raw: str, *, base_url: str) -> Clause | None:
    """One ``name[:modifier]=value[,value]`` as a Clause; None if the name is unknown."""
    base_name, _, modifier = name.partition(":")
    if base_name == "_id":
        _no_modifier(name, modifier)
        return Clause("_id", "id", tuple(IdValue(v) for v in split_values(raw)))
    if base_name == "_lastUpdated":
        _no_modifier(name, modifier)
        return Clause("_lastUpdated", "lastUpdated",
                      tuple(parse_date(name, v) for v in split_values(raw)))
    param = search_params(resource_type).get(base_name)
    if param is None:
        return None
    if modifier == "missing":
        return Clause(param.name, param.kind, (parse_missing(name, raw),))
    values = tuple(_value(param, modifier, v, base_url) for v in split_values(raw))
    return Clause(param.name, param.kind, values)


def split_values(raw: str) -> list[str]:
    """Split on commas that are not escaped as ``\\,`` (R4 §3.1.1.4.7 "Escaping")."""
    parts = re.split(r"(?<!\\),", raw)
    return [p.replace("\\,", ",") for p in parts if p]


def _value(param: SearchParam, modifier: str, raw: str, base_url: str) -> Value:
    if param.kind == "reference":
        return parse_reference(param, modifier, raw, base_url)
    if param.kind == "string":
        if modifier not in ("", "contains", "exact"):
            raise BadRequest(f"modifier :{modifier} is not supported on {param.name}")
        if modifier == "exact":
            return StringValue(raw, "exact")
        return StringValue(fold(raw), modifier or "prefix")
    _no_modifier(param.name, modifier)
    if param.kind == "token":
        return parse_token(raw)
    if param.kind == "quantity":
        return parse_quantity(param.name, raw)
    return parse_date(param.name, raw)


def parse_missing(name: str, raw: str) -> MissingValue:
    if raw not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false")
    return MissingValue(raw == "true")


def parse_token(raw: str) -> TokenValue:
    if "|" not in raw:
        return TokenValue(None, raw)
    system, code = raw.split("|", 1)
    return TokenValue(system, code or None)


def parse_reference(param: SearchParam, modifier: str, raw: str,
                    base_url: str) -> ReferenceValue:
    """``Type/id``, a bare ``id`` (of the param's target type), or an absolute URL; on our
    own base the URL is the same as the relative reference."""
    if modifier and not is_resource_type(modifier):
        raise BadRequest(f"modifier :{modifier} is not supported on {param.name}")
    if "://" in raw:
        try:
            relative = own_relative(raw, base_url)
        except ValueError:
            raise BadRequest(f"{param.name}: {raw!r} is not a URL") from None
        if relative is None:
            return ReferenceValue(None, None, url=raw)
        raw = relative
    local = parse_local_reference(raw)
    if local is None:
        if "/" in raw:
            raise BadRequest(f"{param.name}: {raw!r} is not a reference")
        local = (modifier or param.target or "", raw)
    wanted = param.target or modifier or None
    if wanted is not None and local[0] != wanted:
        raise BadRequest(f"{param.name} refers to {wanted}, not {local[0]}")
    return ReferenceValue(local[0] or None, local[1])


def own_relative(url: str, base_url: str) -> str | None:
    """``Type/id`` of an absolute URL on this server's base; None for another server's.
    ValueError when ``url`` is not a URL at all."""
    own = normalize_url(base_url) + "/"
    normalized = normalize_url(url)
    return normalized[len(own):] if normalized.startswith(own) else None


def parse_date(name: str, raw: str) -> DateValue:
    """``[prefix]YYYY[-MM[-DD[Thh:mm[:ss[.fff]][Z|±hh:mm]]]]`` → its range and prefix."""
    prefix, value = ("eq", raw)
    if raw[:2].isalpha():
        prefix, value = raw[:2], raw[2:]
    try:
        if prefix not in DATE_PREFIXES:
            raise ValueError(prefix)
        found = parse_range(value)
    except ValueError:
        raise BadRequest(f"{name}: {raw!r} is not a supported date search (use "
                         "[eq|ne|lt|le|gt|ge|sa|eb]YYYY[-MM[-DD[Thh:mm[:ss][Z|±hh:mm]]]])"
                         ) from None
    return DateValue(prefix, found.low, found.high)


def parse_quantity(name: str, raw: str) -> QuantityValue:
    """``[prefix]number[|system|code]``; ``number||code`` means any system."""
    text, _, rest = raw.partition("|")
    prefix = text[:2] if text[:2].isalpha() else "eq"
    number_text = text[2:] if text[:2].isalpha() else text
    system, _, code = rest.partition("|")
    if prefix not in QUANTITY_PREFIXES or not _NUMBER.match(number_text) or \
            (rest and "|" not in rest):
        raise BadRequest(f"{name}: {raw!r} is not a quantity search "
                         "([prefix]number[|system|code])")
    try:
        number = Decimal(number_text)
    except InvalidOperation:
        raise BadRequest(f"{name}: {number_text!r} is not a number") from None
    if abs(number) > _MAX_NUMBER:
        raise BadRequest(f"{name}: {number_text!r} is out of range")
    # R4 §3.1.1.4.5: "the precision of the number is significant": 5.4 means [5.35, 5.45).
    exponent = number.as_tuple().exponent
    half = Decimal(5).scaleb((exponent if isinstance(exponent, int) else 0) - 1)
    return QuantityValue(prefix, float(number), float(number - half), float(number + half),
                         system or None, code or None)


def _no_modifier(name: str, modifier: str) -> None:
    if modifier:
        raise BadRequest(f"modifier :{modifier} is not supported on {name.partition(':')[0]}")
