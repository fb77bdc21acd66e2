"""Search latency at scale on the path a user takes: ``smartrealm generate``, ``smartrealm
load``, ``smartrealm serve`` as subprocesses from an empty data directory, then one client
searching the EHR with a Backend Services token (goal: p95 ≤ 10 ms at 1M resources, on
SQLite and on PostgreSQL; load ≥ 2,500 resources/s with validation).

What it does (bench/user_path.py has the steps):
1. writes a realm file (the default realm on free ports; ``--backend postgres``: a
   throwaway PostgreSQL cluster as its ``[database] url``);
2. ``smartrealm generate --patients N`` (≈ 31 EHR resources a person: 32,300 ≈ 1M) and
   ``smartrealm load --server ehr`` — prints the load rate (resources / wall-clock seconds
   of the whole command);
3. ``smartrealm client add`` (private_key_jwt, client_credentials, system/ read scopes),
   ``smartrealm serve``, one token from the AS's token endpoint;
4. sends ``--requests`` of each search, one at a time (httpx, keep-alive), for random
   patients, and prints p50/p95/p99 measured at the client:
   ``Observation?patient=X&category=vital-signs``, ``Observation?patient=X&code=<LOINC>``
   and ``Encounter?patient=X&_sort=-date``.

    .venv/bin/python bench/search_latency.py                            # 1,000 people
    .venv/bin/python bench/search_latency.py --patients 32300           # ≈ 1M resources
    .venv/bin/python bench/search_latency.py --patients 32300 --backend postgres
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from user_path import (
    add_backend_client,
    database,
    generate,
    load,
    load_average,
    serving,
    system_token,
    write_realm,
)

LOINC = "http://loinc.org"
SEARCHES = (
    ("Observation", "category=vital-signs"),
    ("Observation", f"code={LOINC}|8867-4"),   # heart rate: every visit's vital signs
    ("Encounter", "_sort=-date"),
)
SCOPE = "system/Observation.rs system/Encounter.rs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smartrealm-bench-") as tmp, \
            database(args.backend) as url:
        realm = write_realm(Path(tmp), url)
        print(f"backend: {args.backend}; {time.strftime('%Y-%m-%d %H:%M')}; "
              f"load average {load_average()}", flush=True)
        took, path, count = generate(realm, args.patients)
        print(f"  smartrealm generate --patients {args.patients}: {took:,.0f} s "
              f"({count:,} EHR resources)", flush=True)
        took = load(realm, path)
        print(f"  smartrealm load --server ehr: {took:,.0f} s = {count / took:,.0f} "
              f"resources/s with validation (load average after: {load_average()})",
              flush=True)
        client_id, key = add_backend_client(realm, SCOPE)
        with serving(realm):
            token = system_token(realm, client_id, key, SCOPE)
            measure(realm.base(8701, "/fhir"), token, args)
        print(f"  load average at the end: {load_average()}")


def measure(base: str, token: str, args: argparse.Namespace) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    with httpx.Client(timeout=60, headers=headers) as client:
        for resource_type, criteria in SEARCHES:
            rng = random.Random(7)
            times: list[float] = []
            matches: list[int] = []
            for i in range(args.warmup + args.requests):
                pid = f"p{1 + rng.randrange(args.patients):04d}"
                url = f"{base}/{resource_type}?patient={pid}&{criteria}"
                started = time.perf_counter()
                response = client.get(url)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")
                if i >= args.warmup:
                    times.append(elapsed)
                    matches.append(len(response.json().get("entry", [])))
            report(f"{resource_type}?patient=X&{criteria}", times, matches)


def report(label: str, times: list[float], matches: list[int]) -> None:
    cuts = statistics.quantiles(times, n=100)
    print(f"  {label}: n={len(times)} p50={cuts[49]:.1f} ms p95={cuts[94]:.1f} ms "
          f"p99={cuts[98]:.1f} ms max={max(times):.1f} ms (entries per page: "
          f"{min(matches)}..{max(matches)})", flush=True)


if __name__ == "__main__":
    main()
