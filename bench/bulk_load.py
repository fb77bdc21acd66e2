"""Bulk load with validation (issue 4: ≥ 1,500 resources/s on SQLite).

What it measures: exactly what `smartrealm load --server ehr FILE` does with the file —
every line parsed (strict JSON) and validated with the R4 models (fhir/validation.py), in
worker processes for a large input (fhir/load_pool.py; ``--workers``, 0 = all in this
process), then stored through the repository's bulk loader in transactions of 5,000
(resource row, history row, search index rows) — on a fresh SQLite file (or
``--database-url``). The input is the realm's synthetic EHR dataset (`smartrealm
generate`: ~31 resources per person), written to NDJSON first; writing it is not timed.

    .venv/bin/python bench/bulk_load.py                    # 1,000 people ≈ 31,000 resources
    .venv/bin/python bench/bulk_load.py --patients 5000 --rounds 3
    .venv/bin/python bench/bulk_load.py --workers 0        # validation in the main process
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from smartrealm.cli_fhir import stream_dataset, write_ndjson  # noqa: E402
from smartrealm.fhir.load_pool import default_workers  # noqa: E402
from smartrealm.fhir.loader import load, read_items  # noqa: E402
from smartrealm.fhir.params import supported_types  # noqa: E402
from smartrealm.fhir.sql import SqlResourceRepository  # noqa: E402
from smartrealm.realm.config import load_config  # noqa: E402
from smartrealm.storage import make_engine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"validating processes (default {default_workers()}: one per "
                             "core besides the writer; 0: none)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat on a fresh store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "ehr.ndjson"
        realm = load_config()
        count = write_ndjson(source, stream_dataset(realm, "ehr", args.patients, lambda _n: None))
        for n in range(args.rounds):
            url = args.database_url or f"sqlite:///{Path(tmp) / f'ehr{n}.db'}"
            elapsed = measure(url, source, count, args.workers)
            workers = default_workers() if args.workers is None else args.workers
            print(f"bulk load with validation: {count} resources ({args.patients} people) in "
                  f"{elapsed:.1f} s = {count / elapsed:,.0f} resources/s on "
                  f"{url.split(':', 1)[0]} ({workers} validating workers; load average "
                  f"{Path('/proc/loadavg').read_text().split()[:3]})", flush=True)


def measure(url: str, source: Path, count: int, workers: int | None) -> float:
    engine = make_engine(url)
    try:
        repository = SqlResourceRepository(engine)
        repository.create_tables()
        started = time.perf_counter()
        report = load(repository, read_items(source), supported_types("ehr"),
                      workers=workers)
        elapsed = time.perf_counter() - started
    finally:
        engine.dispose()
    assert report.total == count and not report.errors, report.errors[:3]
    return elapsed


if __name__ == "__main__":
    main()
