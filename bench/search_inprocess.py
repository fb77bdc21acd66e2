"""The FHIR app of server "ehr" served in a child process on a store the benchmark loaded
itself, with tokens minted by a fake AS (tests/guard/tokens.py) — the harness of
bench/memory_under_load.py (RSS under load). It takes shortcuts a user cannot (a store
written with the repository's bulk loader, tokens signed by the benchmark); the user's
path is measured by bench/search_latency.py and bench/bulk_load.py.

    .venv/bin/python bench/search_inprocess.py --resources 1000000 --database-url sqlite:///x.db
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import socket
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from bench.search_data import CATEGORY, copy_store, load  # noqa: E402
from sqlalchemy import text  # noqa: E402
from tests.guard.tokens import FakeAuthServer, details_entry, new_key  # noqa: E402

from smartrealm.fhir.access import compartment_clause  # noqa: E402
from smartrealm.fhir.search.parse import parse_search  # noqa: E402
from smartrealm.fhir.search.query import AnyOf, PageQuery  # noqa: E402
from smartrealm.fhir.sql import SqlResourceRepository  # noqa: E402
from smartrealm.fhir.sql.explain import explain  # noqa: E402
from smartrealm.fhir.sql.search import count_statement, page_statement  # noqa: E402
from smartrealm.realm.config import RealmConfig, load_config  # noqa: E402
from smartrealm.storage import make_engine  # noqa: E402

LAB = f"{CATEGORY}|laboratory"
SEARCHES = {"Observation": f"category={LAB}", "ImagingStudy": ""}


def analyze(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


def print_plans(url: str, base: str, patient: str) -> None:
    engine = make_engine(url)
    restriction = {t: AnyOf(((compartment_clause(t, patient),),)) for t in SEARCHES}
    with engine.connect() as conn:
        for rtype, extra in SEARCHES.items():
            query = [("patient", patient)] + ([tuple(extra.split("="))] if extra else [])
            request = parse_search(rtype, query, base_url=base)  # type: ignore[arg-type]
            page = PageQuery(rtype, (*request.criteria, restriction[rtype]), 20)
            for label, stmt in (("page", page_statement(page)), ("count", count_statement(page))):
                assert stmt is not None
                print(f"  plan {rtype} {label}:")
                for line in explain(conn, stmt):
                    print(f"    {line}")
    engine.dispose()


def serve(realm: RealmConfig, url: str, auth: FakeAuthServer, port: int) -> None:
    """Child process: the FHIR app of server "ehr" on uvicorn."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from smartrealm.fhir.app import create_app
    from smartrealm.fhir.settings import FhirSettings
    from smartrealm.guard import checker_for_server

    repository = SqlResourceRepository(make_engine(url))
    validator = checker_for_server(realm, "ehr", auth.http())
    app = Starlette(routes=[Mount("/fhir", app=create_app(FhirSettings(realm, "ehr"),
                                                           repository, validator))])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def measure(client: httpx.Client, auth: FakeAuthServer, base: str, patients: int,
            args: argparse.Namespace) -> None:
    scopes = ("patient", "user") if args.scope == "both" else (args.scope,)
    for scope_kind in scopes:
        print(f"  {scope_kind}/ tokens" + (" (a new token per request: its signature is "
                                            "verified too)" if scope_kind == "patient"
                                            else " (one token, cached after the first)"))
        for rtype, extra in SEARCHES.items():
            times, matches = run_searches(client, auth, base, patients, args, scope_kind,
                                          rtype, extra)
            report(f"{rtype}?patient=X" + ("&category=<system>|laboratory" if extra else ""),
                   times, matches)


def run_searches(client: httpx.Client, auth: FakeAuthServer, base: str, patients: int,
                 args: argparse.Namespace, scope_kind: str, rtype: str,
                 extra: str) -> tuple[list[float], list[int]]:
    rng = random.Random(7)
    user = auth.mint([base], "user/*.rs", details=[details_entry(base, "user/*.rs")])
    times: list[float] = []
    matches: list[int] = []
    for i in range(args.warmup + args.requests):
        pid = f"pt{rng.randrange(patients):07d}"
        scope = f"patient/{rtype}.rs"
        token = user if scope_kind == "user" else auth.mint(
            [base], scope, details=[details_entry(base, scope, pid)])
        url = f"{base}/{rtype}?patient={pid}" + (f"&{extra}" if extra else "")
        started = time.perf_counter()
        response = client.get(url, headers={"Authorization": f"Bearer {token}"})
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.text[:300]
        if i >= args.warmup:
            times.append(elapsed)
            matches.append(int(response.json()["total"]))
    return times, matches


def report(label: str, times: list[float], matches: list[int]) -> None:
    cuts = statistics.quantiles(times, n=100)
    print(f"  {label}: n={len(times)} p50={cuts[49]:.2f} ms p95={cuts[94]:.2f} ms "
          f"p99={cuts[98]:.2f} ms max={max(times):.2f} ms mean={statistics.mean(times):.2f} ms "
          f"(matches per search: {min(matches)}..{max(matches)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--resources", type=int, default=20_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--scope", choices=["patient", "user", "both"], default="both")
    parser.add_argument("--no-analyze", action="store_true",
                        help="do not run ANALYZE after loading")
    parser.add_argument("--copy-from", default="",
                        help="instead of loading, copy the resources and index rows of a "
                             "store loaded earlier (e.g. the SQLite one into PostgreSQL)")
    args = parser.parse_args()
    with ExitStack() as stack:
        url = args.database_url or database(stack, args.backend)
        run(url, args)


def database(stack: ExitStack, backend: str) -> str:
    if backend == "postgres":
        from tests.pg import postgres_cluster
        return stack.enter_context(postgres_cluster())
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="smartrealm-bench-"))
    return f"sqlite:///{folder}/store.db"


def run(url: str, args: argparse.Namespace) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    realm = load_config()
    servers = tuple(replace(rs, base_url=base, profile="empty") if rs.id == "ehr" else rs
                    for rs in realm.resource_servers)
    realm = replace(realm, resource_servers=servers)
    auth = FakeAuthServer(realm.auth_server.issuer, key=new_key("bench"))
    engine = make_engine(url)
    repository = SqlResourceRepository(engine)
    repository.create_tables()
    print(f"backend: {engine.dialect.name}  store: {url.split('@')[-1]}")
    if repository.count() >= args.resources:
        print(f"  reusing the {repository.count():,} resources already stored")
    elif args.copy_from:
        started = time.perf_counter()
        rate = copy_store(args.copy_from, url)
        print(f"  copied from {args.copy_from}: {time.perf_counter() - started:,.0f} s "
              f"({rate:,.0f} rows/s)")
    else:
        started = time.perf_counter()
        rate = load(repository, args.resources, args.batch)
        print(f"  bulk load: {time.perf_counter() - started:,.0f} s ({rate:,.0f} resources/s)")
    if not args.no_analyze:
        analyze(url)
    engine.dispose()
    patients = max(1, repository.count("Patient"))
    print_plans(url, base, "pt0000001")
    child = multiprocessing.get_context("fork").Process(target=serve,
                                                         args=(realm, url, auth, port))
    child.start()
    try:
        wait_for(port)
        with httpx.Client(timeout=30) as client:
            measure(client, auth, base, patients, args)
    finally:
        child.terminate()
        child.join()


if __name__ == "__main__":
    main()
