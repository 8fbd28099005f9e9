# Two commands set everything up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint bench bench-cloudsync clean interop-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The server, on ./data/ledgersync.sqlite by default; LEDGERSYNC_* variables configure it
# (docs/server.md).
serve: $(STAMP)
	$(BIN)/ledgersync serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy --strict src/ledgersync/protocol src/ledgersync/device src/ledgersync/server src/ledgersync/sdk

# Ledger's JavaScript packages for tests/interop (instant once installed; needs node and npm).
interop-deps:
	bash tests/interop/install.sh

test: lint interop-deps
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/protocol_resolve.py

# Cloud Sync throughput, latency and notification fan-out against a `ledgersync serve`
# subprocess, on SQLite and on an embedded PostgreSQL (docs/benchmarks.md).
bench-cloudsync: $(STAMP)
	$(BIN)/python -m bench.cloudsync

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
	rm -rf tests/interop/node_modules tests/interop/.cache
