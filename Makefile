# Two commands on a fresh machine with Python 3.11+ and make:
#   make demo   — set everything up and play the multi-server flow on real servers
#   make test   — set everything up and run lint, types and the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup system-deps demo serve test lint typecheck pytest clean bench bench-1m

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# PostgreSQL (for the real-PostgreSQL tests) and Debian's Chromium (for the browser tests),
# installed with apt-get when missing.
system-deps:
	./scripts/ensure-system-deps.sh

demo: setup
	$(BIN)/smartrealm demo

serve: setup
	$(BIN)/smartrealm serve

lint: setup
	$(BIN)/ruff check src tests

typecheck: setup
	$(BIN)/mypy

pytest: setup system-deps
	$(BIN)/pytest -q

test: lint typecheck pytest

# Benchmarks (issue 4): each prints its figures; nothing is asserted. The search benchmark
# defaults to 20,000 resources; `.venv/bin/python bench/search_latency.py --help` for 1M.
# throughput.py needs wrk (apt-get install wrk) and 2 cores. `make bench-1m`: the 1M-resource
# runs (RSS under load + search p95 on SQLite, then PostgreSQL); the first load takes ~10 min
# and the SQLite store is kept in /tmp/smartrealm-1m for later runs.
bench: setup
	./scripts/ensure-system-deps.sh --bench
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/search_latency.py
	$(BIN)/python bench/bulk_load.py

bench-1m: setup
	./scripts/ensure-system-deps.sh --bench
	$(BIN)/python bench/memory_under_load.py
	$(BIN)/python bench/search_latency.py --backend postgres --resources 1000000 \
		--copy-from sqlite:////tmp/smartrealm-1m/store.db

clean:
	rm -rf $(VENV) .smartrealm .pytest_cache .mypy_cache .ruff_cache
