"""Large loads validate in worker processes (fhir/rest/load_pool.py): the same verdicts, line
numbers and last-version-wins order as validating in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smartrealm.core.profiles import supported_types
from smartrealm.fhir.rest.load_pool import BATCH, POOL_AFTER
from smartrealm.fhir.rest.loader import load, read_items
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.storage import make_engine

EHR_TYPES = supported_types("ehr")
TOTAL = POOL_AFTER + 3 * BATCH + 7  # past the in-process start: the pool does the rest


def _obs(n: int, **extra: Any) -> str:
    return json.dumps({"resourceType": "Observation", "id": f"o{n}", "status": "final",
                       "code": {"text": f"test {n}"}, "subject": {"reference": "Patient/p1"},
                       **extra})


def _lines() -> list[str]:
    lines = [_obs(n) for n in range(TOTAL)]
    lines[5] = "{broken"                                   # in-process part
    lines[POOL_AFTER + 10] = _obs(1, bogus=True)    # pooled part: unknown element
    lines[POOL_AFTER + 11] = json.dumps({"resourceType": "ImagingStudy", "id": "i1",
                                         "status": "available",
                                         "subject": {"reference": "Patient/p1"}})
    lines[-1] = _obs(7, valueString="last")                # a later version of o7
    return lines


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "big.ndjson"
    path.write_text("\n".join(_lines()) + "\n")
    return path


def _load(tmp_path: Path, source: Path, workers: int) -> tuple[Any, SqlResourceRepository]:
    engine = make_engine(f"sqlite:///{tmp_path / f'store{workers}.db'}")
    repository = SqlResourceRepository(engine)
    repository.create_tables()
    return load(repository, read_items(source), EHR_TYPES, workers=workers), repository


def test_pool_gives_the_same_result_as_in_process(tmp_path: Path, source: Path) -> None:
    pooled, pooled_repo = _load(tmp_path, source, workers=1)
    inline, inline_repo = _load(tmp_path, source, workers=0)
    assert pooled.errors == inline.errors
    assert [where for where, _ in pooled.errors] == [
        "line 6", f"line {POOL_AFTER + 11}", f"line {POOL_AFTER + 12}"]
    assert pooled.errors[1][1].startswith("Observation.bogus: ")
    assert pooled.errors[2][1] == "this server does not serve ImagingStudy resources"
    assert dict(pooled.loaded) == dict(inline.loaded) == {"Observation": TOTAL - 3}
    for repository in (pooled_repo, inline_repo):
        assert repository.count("Observation") == TOTAL - 4  # 3 rejected, o7 twice
        stored = repository.get("Observation", "o7")
        assert stored is not None and stored.version_id == 2
        assert stored.resource["valueString"] == "last"
