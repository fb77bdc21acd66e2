"""Request bodies: strict JSON parsing and R4 validation of resources with the
``fhir.resources.R4B`` models (R4B's resource models are R4's for every type we serve).

Statuses (R4 http.html#create, #update): a body that is not JSON, not a JSON object, or
whose ``resourceType`` is missing, unknown or not the type of the URL is **400**; a resource
that parses but breaks the R4 structure (unknown element, wrong datatype, missing required
element, malformed date, empty array...) is **422** with one OperationOutcome issue per
problem, each naming the element as a FHIRPath-like ``expression``
(``Observation.code.coding[0].system``). Nothing a client sends can make this a 500."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, ClassVar

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from smartrealm.core.defaults import FHIR_MAX_BODY as MAX_BODY
from smartrealm.core.defaults import FHIR_MAX_DEPTH as MAX_DEPTH
from smartrealm.core.defaults import FHIR_MAX_ISSUES as MAX_ISSUES
from smartrealm.fhir.errors import BadRequest, FhirError, PayloadTooLarge, UnsupportedMediaType

JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")


class InvalidResource(FhirError):  # noqa: N818 (named like errors.py)
    """422 with one issue per problem (``issues``: (code, expression, diagnostics))."""

    status = 422
    code: ClassVar[str] = "processing"

    def __init__(self, issues: list[tuple[str, str, str]]) -> None:
        super().__init__("; ".join(f"{where}: {text}" for _, where, text in issues))
        self.issues = issues

    def outcome(self) -> dict[str, Any]:
        return {"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": code, "diagnostics": text, "expression": [where]}
            for code, where, text in self.issues]}


# --------------------------------------------------------------------------- JSON


def check_media_type(content_type: str | None) -> None:
    """Only JSON is spoken (R4 http.html#mime-type); a missing type is read as JSON."""
    if content_type is None or not content_type.strip():
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in JSON_TYPES:
        raise UnsupportedMediaType(f"this server reads only FHIR JSON, not {media!r}")


def parse_json(body: bytes) -> Any:
    """RFC 8259 JSON, stricter than ``json.loads``: no NaN/Infinity, no duplicate keys,
    no number too large for a double, bounded size and nesting (R4 json.html)."""
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"the body exceeds {MAX_BODY} bytes")
    try:
        text = body.decode("utf-8-sig")
        value = json.loads(text, object_pairs_hook=_no_duplicates,
                           parse_constant=_no_constant, parse_float=_finite_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {_first_line(exc)}") from None
    if _depth(value) > MAX_DEPTH:
        raise BadRequest(f"the body nests deeper than {MAX_DEPTH} levels")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate property {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value


def _depth(value: Any) -> int:
    """Nesting depth, computed without recursion (the value may be arbitrarily deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node \
            if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_DEPTH:
                    return depth + 1
                stack.append((child, depth + 1))
        deepest = max(deepest, depth)
    return deepest


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


# --------------------------------------------------------------------------- resources


def resource_type_of(value: Any) -> str:
    """The ``resourceType`` of a parsed body; 400 when it is not a resource at all."""
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object (a FHIR resource)")
    resource_type = value.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise BadRequest("the resource has no resourceType")
    if model_class(resource_type) is None:
        raise BadRequest(f"{resource_type[:64]!r} is not an R4 resource type")
    return resource_type


def validate_resource(value: Any, expected_type: str | None = None) -> dict[str, Any]:
    """``value`` checked against the R4 model of its type (and the URL's type): 400 or
    422 as described above; returned unchanged (the server stores what was sent)."""
    resource_type = resource_type_of(value)
    if expected_type is not None and resource_type != expected_type:
        raise BadRequest(f"the resource is a {resource_type[:64]}, but the URL is for "
                         f"{expected_type}")
    issues = list(_empty_elements(value, resource_type))
    if not issues:
        issues = _model_issues(value, resource_type)
    if issues:
        raise InvalidResource(issues[:MAX_ISSUES])
    resource: dict[str, Any] = value
    return resource


@lru_cache(maxsize=256)
def model_class(resource_type: str) -> Any:
    if not resource_type.isalpha() or not resource_type[:1].isupper():
        return None
    try:
        cls = get_fhir_model_class(resource_type)
    except (ValueError, KeyError, AttributeError, ImportError):
        return None
    # Datatypes (Coding, HumanName...) are models too, but not resources.
    return cls if isinstance(cls, type) and issubclass(cls, Resource) else None


def _model_issues(value: dict[str, Any], resource_type: str) -> list[tuple[str, str, str]]:
    try:
        model_class(resource_type).model_validate(value)
    except ValidationError as exc:
        return [_issue(resource_type, error) for error in exc.errors()]
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        # The models raise these for some malformed input (e.g. an unknown contained type).
        return [("structure", resource_type, f"invalid resource: {_first_line(exc)}")]
    return []


def _issue(resource_type: str, error: Any) -> tuple[str, str, str]:
    kind = str(error.get("type", ""))
    code = "required" if kind == "missing" else "structure" \
        if kind in ("extra_forbidden", "model_type", "model_validation_format") else "value"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return code, expression(resource_type, error.get("loc", ())), message[:300]


def expression(resource_type: str, loc: Any) -> str:
    """pydantic's error location as FHIRPath: ``('code', 'coding', 0, 'system')`` →
    ``Observation.code.coding[0].system`` (model-internal ``root`` steps dropped)."""
    path = resource_type
    for step in loc if isinstance(loc, tuple | list) else ():
        if isinstance(step, int):
            path += f"[{step}]"
        elif step not in ("root", "__root__") and isinstance(step, str):
            path += f".{step}"
    return path


def _empty_elements(value: Any, resource_type: str) -> Iterator[tuple[str, str, str]]:
    """R4 json.html: objects and arrays are never empty and strings never ""."""
    stack: list[tuple[Any, str]] = [(value, resource_type)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            if not node:
                yield "value", where, "empty objects are not allowed in FHIR JSON"
            stack.extend((v, f"{where}.{k}") for k, v in node.items())
        elif isinstance(node, list):
            if not node:
                yield "value", where, "empty arrays are not allowed in FHIR JSON"
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node))
        elif node == "":
            yield "value", where, "empty strings are not allowed in FHIR JSON"
