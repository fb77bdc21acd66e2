"""Lifetimes, TTLs and limits have one home: core/defaults.py."""

from __future__ import annotations

import re
from pathlib import Path

import smartrealm

SRC = Path(smartrealm.__file__).parent
# A module-level constant named like a lifetime, time-to-live, timeout or size limit, given a
# number: it belongs in core/defaults.py (imported from there under any local name).
SCATTERED = re.compile(r"^\s*[A-Z_]*(LIFETIME|TTL|TIMEOUT|RETENTION|INTERVAL|MAX_[A-Z_]+|"
                       r"[A-Z_]+_MAX|MAX_AGE|LEEWAY|PAGE_SIZE|PURGE_AFTER)\s*(:[^=]*)?=\s*[0-9(]",
                       re.M)


def test_no_lifetime_or_limit_is_defined_outside_the_defaults_module() -> None:
    found = [f"{path.relative_to(SRC)}: {match.group(0)}"
             for path in SRC.rglob("*.py") if path != SRC / "core" / "defaults.py"
             for match in SCATTERED.finditer(path.read_text("utf-8"))]
    assert found == []


def test_the_defaults_module_documents_each_value() -> None:
    lines = (SRC / "core" / "defaults.py").read_text("utf-8").splitlines()
    undocumented = [line for i, line in enumerate(lines)
                    if re.match(r"^[A-Z_]+ = ", line) and not lines[i - 1].startswith("#")]
    assert undocumented == []
