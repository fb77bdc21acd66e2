"""The one FHIR id pattern and the one resource-type pattern.

* id: R4 datatypes.html#id — ``[A-Za-z0-9\\-\\.]{1,64}``.
* resource type: a resource type name as it appears in a URL, a reference or a scope — an
  upper-case letter, then letters, 64 characters at most (every R4 type name, e.g. ``Patient``,
  ``ImagingStudy``). Whether the name is a type a server *serves* is a separate question
  answered by its profile.

The ``*_PATTERN`` strings are for composing larger patterns (references, routes); the
compiled forms match a whole string."""

from __future__ import annotations

import re

ID_PATTERN = r"[A-Za-z0-9\-.]{1,64}"
TYPE_PATTERN = r"[A-Z][A-Za-z]{0,63}"

FHIR_ID = re.compile(ID_PATTERN)
RESOURCE_TYPE = re.compile(TYPE_PATTERN)


def is_fhir_id(value: str) -> bool:
    return FHIR_ID.fullmatch(value) is not None


def is_resource_type(value: str) -> bool:
    return RESOURCE_TYPE.fullmatch(value) is not None
