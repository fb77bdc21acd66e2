"""`smartrealm patients …` and the links `smartrealm load` records, run as an operator runs
them (subprocesses on a temporary realm): what they print, exit codes, never a traceback,
and what the patient index holds afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from smartrealm.authz.stores.sql_patient_index import SqlPatientIndex
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.realm.config import load_config
from smartrealm.storage import make_engine

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "smartrealm.cli"]
MRN = "https://smartrealm.example.org/sid/mrn"


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args, "--data-dir", str(data_dir)], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def _index(data_dir: Path) -> SqlPatientIndex:
    realm = load_config().relocated({}, data_dir)
    return SqlPatientIndex(make_engine(realm.database_url_for(None)))


def _patient(pid: str, *mrns: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": pid}],
            "identifier": [{"system": "urn:other", "value": pid},
                           *({"system": MRN, "value": m} for m in mrns)]}


def _write(path: Path, resources: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")
    return path


def test_load_links_the_patients_it_stores(tmp_path: Path) -> None:
    data = tmp_path / "realm"
    lab = _write(tmp_path / "lab.ndjson", [
        _patient("lab-a", "MRN-A"), _patient("lab-b"), _patient("lab-c", "MRN-C1", "MRN-C2")])
    loaded = run("load", "--server", "lab", str(lab), data_dir=data)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert "1 patients linked" in loaded.stdout
    index = _index(data)
    assert [(k.server_id, k.patient_id, k.source) for k in index.records_of("MRN-A")] == [
        ("lab", "lab-a", "load")]
    assert index.person_of("lab", "lab-b") is None  # no MRN: nothing to link by
    assert index.person_of("lab", "lab-c") is None  # two MRNs: not guessed at
    # A reload with another MRN moves that record's link (the file is the trusted source).
    again = _write(tmp_path / "again.ndjson", [_patient("lab-a", "MRN-Z")])
    assert run("load", "--server", "lab", str(again), data_dir=data).returncode == 0
    assert index.person_of("lab", "lab-a") == "MRN-Z"


def test_link_show_list_unlink(tmp_path: Path) -> None:
    linked = run("patients", "link", "--server", "lab", "--patient", "lab0042",
                 "--person", "MRN000042", data_dir=tmp_path)
    assert linked.returncode == 0, linked.stderr
    assert "linked lab Patient/lab0042 to MRN000042" in linked.stdout
    run("patients", "link", "--server", "ehr", "--patient", "p0042", "--person", "MRN000042",
        data_dir=tmp_path)
    shown = run("patients", "show", "--server", "ehr", "--patient", "p0042", "--json",
                data_dir=tmp_path)
    assert [(r["server"], r["patient"], r["source"]) for r in json.loads(shown.stdout)] == [
        ("ehr", "p0042", "operator"), ("lab", "lab0042", "operator")]
    listed = json.loads(run("patients", "list", "--server", "lab", "--json",
                            data_dir=tmp_path).stdout)
    assert [r["patient"] for r in listed] == ["lab0042"]
    moved = run("patients", "link", "--server", "lab", "--patient", "lab0042", "--person",
                "MRN000043", data_dir=tmp_path)
    assert "(was MRN000042)" in moved.stdout
    assert run("patients", "unlink", "--server", "lab", "--patient", "lab0042",
               data_dir=tmp_path).returncode == 0
    again = run("patients", "unlink", "--server", "lab", "--patient", "lab0042",
                data_dir=tmp_path)
    assert again.returncode == 1 and "not linked" in again.stderr
    assert _index(tmp_path).records_of("MRN000043") == []


def test_bad_input_names_the_problem(tmp_path: Path) -> None:
    unknown = run("patients", "link", "--server", "nope", "--patient", "x", "--person", "M",
                  data_dir=tmp_path)
    assert unknown.returncode == 2 and "no resource server 'nope'" in unknown.stderr
    bad_id = run("patients", "link", "--server", "lab", "--patient", "a/b", "--person", "M",
                 data_dir=tmp_path)
    assert bad_id.returncode == 2 and "is not a FHIR id" in bad_id.stderr
    blank = run("patients", "link", "--server", "lab", "--patient", "a", "--person", " ",
                data_dir=tmp_path)
    assert blank.returncode == 2 and "--person" in blank.stderr
    neither = run("patients", "show", data_dir=tmp_path)
    assert neither.returncode == 2
    assert run("patients", "show", "--person", "MRN-NONE",
               data_dir=tmp_path).returncode == 1
    assert _index(tmp_path).count() == 0


def test_rebuild_replaces_a_servers_links_with_its_store(tmp_path: Path) -> None:
    realm = load_config().relocated({}, tmp_path)
    store = SqlResourceRepository(make_engine(realm.database_url_for("lab")))
    store.create_tables()
    store.bulk_load([_patient(f"lab{n:04d}", f"M{n}") for n in range(1, 1203)]
                    + [_patient("lab-none")])
    index = _index(tmp_path)
    run("patients", "link", "--server", "lab", "--patient", "stale", "--person", "M1",
        data_dir=tmp_path)
    run("patients", "link", "--server", "ehr", "--patient", "p1", "--person", "M1",
        data_dir=tmp_path)
    rebuilt = run("patients", "rebuild", "--server", "lab", data_dir=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "lab: 1202 records linked" in rebuilt.stdout
    assert index.count("lab") == 1202 and index.person_of("lab", "lab1202") == "M1202"
    assert [k.patient_id for k in index.records_of("M1")] == ["p1", "lab0001"]
