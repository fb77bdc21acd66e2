"""Resource-server RSS under load with the 1M-resource dataset (target: RSS < 250 MB while
serving 1,000,000 resources under load), and in the same run the single-client search p95.

What it does:
1. uses (or loads, ~10 min, with bench/search_data.py) a store holding ``--resources``
   synthetic resources — by default the SQLite file ``/tmp/smartrealm-1m/store.db``, kept
   so that later runs reuse it;
2. serves the real FHIR app (token validation, scopes, SQL search, rendering) with uvicorn
   (one process) on loopback, exactly as bench/search_inprocess.py does;
3. drives ``--duration`` seconds of concurrent mixed load with ``wrk`` (``--connections``):
   ``Observation?patient=X&category=laboratory``, ``ImagingStudy?patient=X``,
   ``Encounter?patient=X&_count=50``, ``Patient/X`` and ``Observation/<id>`` reads, for
   random patients, with one ``user/*.rs`` token; a non-2xx answer fails the run;
4. samples the server process's ``VmRSS`` every 0.25 s from ``/proc/<pid>/status`` and
   reads its ``VmHWM`` (the kernel's peak RSS) at the end — before, during and after load;
5. then measures the single-client p50/p95 of the two issue searches (search_inprocess.py).

    .venv/bin/python bench/memory_under_load.py                     # reuses /tmp/smartrealm-1m
    .venv/bin/python bench/memory_under_load.py --duration 60 --connections 16
    .venv/bin/python bench/memory_under_load.py --resources 20000 --database-url sqlite:///x.db
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from bench.search_data import CATEGORY, load  # noqa: E402
from bench.search_inprocess import analyze, free_port, measure, serve, wait_for  # noqa: E402
from tests.guard.tokens import FakeAuthServer, details_entry, new_key  # noqa: E402

from smartrealm.fhir.sql import SqlResourceRepository  # noqa: E402
from smartrealm.realm.config import load_config  # noqa: E402
from smartrealm.storage import make_engine  # noqa: E402

DEFAULT_URL = "sqlite:////tmp/smartrealm-1m/store.db"


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in kB (Linux /proc)."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


class Sampler(threading.Thread):
    """Samples a process's RSS until stopped; ``peak`` is the largest sample (kB)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.samples = pid, 0, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.25):
            self.peak = max(self.peak, memory(self.pid).get("VmRSS", 0))
            self.samples += 1

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def lua_script(base: str, token: str, patients: int, path: Path) -> None:
    """A wrk script cycling through a fixed random mix of searches and reads."""
    rng = random.Random(11)
    lab = f"{CATEGORY}|laboratory".replace("|", "%7C")
    requests = []
    for _ in range(5000):
        pid = f"pt{rng.randrange(patients):07d}"
        requests.append(rng.choice((
            f"{base}/Observation?patient={pid}&category={lab}",
            f"{base}/ImagingStudy?patient={pid}",
            f"{base}/Encounter?patient={pid}&_count=50",
            f"{base}/Patient/{pid}",
            f"{base}/Observation/{pid}-o{rng.randrange(85)}")))
    paths = ",\n".join(f'"{httpx.URL(r).raw_path.decode()}"' for r in requests)
    path.write_text(f"""
paths = {{
{paths}
}}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1],
                    {{["Authorization"] = "Bearer {token}", ["Accept"] = "application/fhir+json"}})
end
""")


def drive(url: str, script: Path, args: argparse.Namespace) -> str:
    cmd = ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.duration}s",
           "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failures:\n{out}")
    return out


def summary(out: str) -> str:
    keep = ("Requests/sec", "requests in", "50%", "99%", "Latency ")
    return "\n".join(f"    {line.strip()}" for line in out.splitlines()
                     if line.strip().startswith(keep) or any(k in line for k in keep[:2]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=60, help="seconds of wrk load")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=500,
                        help="single-client searches of each kind after the load")
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    args.scope = "both"
    if shutil.which("wrk") is None:
        sys.exit("bench/memory_under_load.py needs wrk: `sudo apt-get install -y wrk`")
    run(args)


def ensure_loaded(url: str, total: int) -> int:
    engine = make_engine(url)
    repository = SqlResourceRepository(engine)
    repository.create_tables()
    count = repository.count()
    if 0 < count < total:
        sys.exit(f"{url} holds {count:,} resources, fewer than {total:,}: remove it first")
    if count == 0:
        print(f"  loading {total:,} resources into {url} (kept for later runs)...")
        load(repository, total, 10_000)
        analyze(url)
        count = repository.count()
    patients = repository.count("Patient")
    engine.dispose()
    print(f"store: {url} — {count:,} resources, {patients:,} patients")
    return patients


def run(args: argparse.Namespace) -> None:
    patients = ensure_loaded(args.database_url, args.resources)
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    realm = load_config()
    realm = replace(realm, resource_servers=tuple(
        replace(rs, base_url=base, profile="empty") if rs.id == "ehr" else rs
        for rs in realm.resource_servers))
    auth = FakeAuthServer(realm.auth_server.issuer, key=new_key("bench"))
    token = auth.mint([base], "user/*.rs", lifetime=3600,
                      details=[details_entry(base, "user/*.rs")])
    child = multiprocessing.get_context("fork").Process(
        target=serve, args=(realm, args.database_url, auth, port))
    child.start()
    try:
        wait_for(port)
        assert child.pid is not None
        load_and_sample(child.pid, base, token, patients, args)
        print("single-client search latency after the load (same server process):")
        with httpx.Client(timeout=30) as client:
            measure(client, auth, base, patients, args)
        print(f"  VmHWM at the end: {memory(child.pid)['VmHWM'] / 1024:.1f} MB")
    finally:
        child.terminate()
        child.join()


def load_and_sample(pid: int, base: str, token: str, patients: int,
                    args: argparse.Namespace) -> None:
    print(f"  server RSS at start: {memory(pid)['VmRSS'] / 1024:.1f} MB; load average "
          f"{Path('/proc/loadavg').read_text().split()[:3]}")
    sampler = Sampler(pid)
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "mix.lua"
        lua_script(base, token, patients, script)
        out = drive(f"{base}/metadata", script, args)
    sampler.stop()
    status = memory(pid)
    print(f"  wrk -t2 -c{args.connections} -d{args.duration}s, mixed searches and reads:")
    print(summary(out))
    print(f"  server RSS: peak sampled {sampler.peak / 1024:.1f} MB ({sampler.samples} "
          f"samples), VmHWM {status['VmHWM'] / 1024:.1f} MB, now {status['VmRSS'] / 1024:.1f}"
          f" MB (target < 250 MB)")


if __name__ == "__main__":
    main()
