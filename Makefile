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
	$(BIN)/ruff check src tests examples bench
	$(BIN)/lint-imports  # the layer contract in pyproject.toml [tool.importlinter]
	$(BIN)/hadolint Dockerfile

typecheck: setup
	$(BIN)/mypy

pytest: setup system-deps
	$(BIN)/pytest -q

test: lint typecheck pytest

# Benchmarks: each prints its figures; nothing is asserted. search_latency.py and
# bulk_load.py take the user's path — `smartrealm generate`, `load`, `serve` as subprocesses
# from an empty data directory — on SQLite and on a throwaway PostgreSQL cluster;
# throughput.py needs wrk (apt-get install wrk) and 2 cores; token_endpoint.py needs node and
# npm (it installs the pinned node-oidc-provider into bench/peers/node_modules) and 2 cores;
# scale.py needs wrk and haproxy.
# `make bench-1m`: 32,300 people
# ≈ 1M EHR resources (load ≈ 3–4 min a backend on an idle 2-core machine), then the RSS under
# load benchmark.
bench: setup
	./scripts/ensure-system-deps.sh --bench
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/search_latency.py
	$(BIN)/python bench/search_latency.py --backend postgres
	$(BIN)/python bench/bulk_load.py
	$(BIN)/python bench/token_endpoint.py
	$(BIN)/python bench/scale.py

bench-1m: setup
	./scripts/ensure-system-deps.sh --bench
	$(BIN)/python bench/search_latency.py --patients 32300
	$(BIN)/python bench/search_latency.py --patients 32300 --backend postgres
	$(BIN)/python bench/memory_under_load.py

clean:
	rm -rf $(VENV) .smartrealm .pytest_cache .mypy_cache .ruff_cache
