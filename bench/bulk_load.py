"""Bulk load with validation on the path a user takes (goal: ≥ 2,500 resources/s at 1M
resources, SQLite and PostgreSQL): ``smartrealm generate --patients N`` then ``smartrealm
load --server ehr`` as subprocesses, into an empty data directory, timed from start to
exit of the load command (parse, R4 validation in worker processes, storing, statistics).
bench/search_latency.py runs the same two steps before its searches.

    .venv/bin/python bench/bulk_load.py                      # 1,000 people ≈ 31,000 resources
    .venv/bin/python bench/bulk_load.py --patients 32300     # ≈ 1M
    .venv/bin/python bench/bulk_load.py --backend postgres --rounds 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from user_path import database, generate, load, load_average, write_realm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1, help="repeat on an empty store")
    args = parser.parse_args()
    for n in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="smartrealm-bench-") as tmp, \
                database(args.backend) as url:
            realm = write_realm(Path(tmp), url)
            _, path, count = generate(realm, args.patients)
            before = load_average()
            took = load(realm, path)
            print(f"round {n + 1}: smartrealm load --server ehr, {count:,} resources "
                  f"({args.patients:,} people) on {args.backend}: {took:,.1f} s = "
                  f"{count / took:,.0f} resources/s with validation "
                  f"({time.strftime('%Y-%m-%d %H:%M')}; load average before "
                  f"{before}, after {load_average()})", flush=True)


if __name__ == "__main__":
    main()
