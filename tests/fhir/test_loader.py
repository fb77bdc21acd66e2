"""`smartrealm load` / `smartrealm generate` and the loader behind them (fhir/rest/loader.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from smartrealm.cli import app
from smartrealm.core.profiles import supported_types
from smartrealm.fhir.rest.loader import load, read_items
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.realm.config import load_config
from smartrealm.storage import make_engine

EHR_TYPES = supported_types("ehr")


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[SqlResourceRepository]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    repository = SqlResourceRepository(engine)
    repository.create_tables()
    yield repository
    engine.dispose()


def _obs(pid: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": f"Patient/{pid}"}, **extra}


def test_ndjson_reports_rejects_by_line(repo: SqlResourceRepository, tmp_path: Path) -> None:
    path = tmp_path / "data.ndjson"
    path.write_text("\n".join([
        json.dumps(_obs("p1", id="o1")),
        "",
        json.dumps({"resourceType": "Observation", "status": "final"}),
        "{broken",
        json.dumps({"resourceType": "ImagingStudy", "status": "available",
                    "subject": {"reference": "Patient/p1"}}),
        json.dumps(_obs("p1")),
        json.dumps(_obs("p1", id="bad id")),
    ]) + "\n")
    report = load(repo, read_items(path), EHR_TYPES)
    assert dict(report.loaded) == {"Observation": 2}
    assert [where for where, _ in report.errors] == ["line 3", "line 4", "line 5", "line 7"]
    assert "Observation.code" in report.errors[0][1]
    assert "not serve ImagingStudy" in report.errors[2][1]
    stored = repo.get("Observation", "o1")
    assert stored is not None and stored.version_id == 1


def test_transaction_bundle_gets_ids_and_references(repo: SqlResourceRepository,
                                                    tmp_path: Path) -> None:
    urn = "urn:uuid:4f7c2f1e-1d2b-4b8a-9e44-0d7e6e2c1a11"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": urn, "resource": {"resourceType": "Patient", "name": [{"family": "B"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": _obs("x") | {"subject": {"reference": urn}},
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": _obs("x") | {"subject": {"reference": "urn:uuid:missing"}}},
    ]}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle, indent=2))
    report = load(repo, read_items(path), EHR_TYPES)
    assert dict(report.loaded) == {"Patient": 1, "Observation": 1}
    assert report.errors[0][0] == "entry 2" and "names no entry" in report.errors[0][1]
    found, _ = repo.search("Observation", [], count=10, offset=0)
    patients, _ = repo.search("Patient", [], count=10, offset=0)
    assert found[0]["subject"]["reference"] == f"Patient/{patients[0]['id']}"


def test_one_resource_file_and_an_unparseable_one(repo: SqlResourceRepository,
                                                  tmp_path: Path) -> None:
    single = tmp_path / "one.json"
    single.write_text(json.dumps(_obs("p1", id="solo"), indent=1))
    assert dict(load(repo, read_items(single), EHR_TYPES).loaded) == {"Observation": 1}
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceType": ')
    report = load(repo, read_items(broken), EHR_TYPES)
    assert report.total == 0 and report.errors[0][0] == "the file"


def test_progress_is_reported(repo: SqlResourceRepository, tmp_path: Path) -> None:
    path = tmp_path / "many.ndjson"
    path.write_text("\n".join(json.dumps(_obs("p1", id=f"m{n}")) for n in range(5)))
    seen: list[int] = []
    load(repo, read_items(path), EHR_TYPES, seen.append)
    assert seen == [1, 2, 3, 4, 5]


# --------------------------------------------------------------------------- the CLI


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_generate_then_load(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "gen"
    generated = runner.invoke(app, ["generate", "--patients", "8", "--out", str(out)])
    assert generated.exit_code == 0, generated.output
    files = {p.name for p in out.iterdir()}
    assert files == {"ehr.ndjson", "imaging.ndjson", "lab.ndjson"}
    ehr, imaging = _lines(out / "ehr.ndjson"), _lines(out / "imaging.ndjson")
    ehr_ids = {r["id"] for r in ehr if r["resourceType"] == "Patient"}
    imaging_ids = {r["id"] for r in imaging if r["resourceType"] == "Patient"}
    assert len(ehr_ids) == 8 and {"p0001", "p0006"} <= ehr_ids & imaging_ids  # shared ids
    assert "img0007" in imaging_ids and "p0007" in ehr_ids                   # linked by MRN
    mrns = {r["id"]: r["identifier"][0]["value"] for r in imaging
            if r["resourceType"] == "Patient"}
    assert mrns["img0007"] == "MRN000007"
    practitioners = [r["id"] for r in ehr if r["resourceType"] == "Practitioner"]
    assert len(practitioners) == len(set(practitioners))

    data_dir = tmp_path / "state"
    loaded = runner.invoke(app, ["load", "--server", "ehr", str(out / "ehr.ndjson"),
                                 "--data-dir", str(data_dir)])
    assert loaded.exit_code == 0, loaded.output
    assert f"{len(ehr)}" in loaded.output
    realm = load_config().relocated({}, data_dir.resolve())
    engine = make_engine(realm.database_url_for("ehr"))
    try:
        assert SqlResourceRepository(engine).count() == len(ehr)
    finally:
        engine.dispose()


def test_load_refusals(tmp_path: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "x.ndjson"
    data.write_text(json.dumps({"resourceType": "Observation", "status": "final"}) + "\n")
    unknown = runner.invoke(app, ["load", "--server", "nope", str(data),
                                  "--data-dir", str(tmp_path / "s")])
    assert unknown.exit_code == 2 and "no resource server" in unknown.output
    rejected = runner.invoke(app, ["load", "--server", "ehr", str(data),
                                   "--data-dir", str(tmp_path / "s")])
    assert rejected.exit_code == 1
    assert "line 1: Observation.code: Field required" in rejected.output
    missing = runner.invoke(app, ["load", "--server", "ehr", str(tmp_path / "none.ndjson")])
    assert missing.exit_code == 2
