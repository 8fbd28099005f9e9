# Two commands set everything up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: `make serve` needs the runtime dependencies only, the other targets the dev extras.
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: serve test lint bench bench-cloudsync clean interop-deps fuzz

$(RUNTIME_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUNTIME_STAMP)

$(DEV_STAMP): $(RUNTIME_STAMP)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP)

# The server, on ./data/ledgersync.sqlite by default; LEDGERSYNC_* variables configure it
# (docs/server.md).
serve: $(RUNTIME_STAMP)
	$(BIN)/ledgersync serve

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy --strict src/ledgersync/protocol src/ledgersync/device src/ledgersync/server src/ledgersync/sdk \
		src/ledgersync/cli src/ledgersync/wallet
	$(BIN)/lint-imports --no-cache

# Ledger's JavaScript packages for tests/interop (instant once installed; needs node and npm).
interop-deps:
	bash tests/interop/install.sh

test: lint interop-deps
	$(BIN)/pytest -q

# A longer, randomized fuzzing campaign against /openapi.json on both backends (a few minutes;
# `make test` runs a short deterministic one). Results: docs/security.md.
fuzz: $(DEV_STAMP)
	LEDGERSYNC_FUZZ_EXAMPLES=1000 LEDGERSYNC_FUZZ_RANDOM=1 $(BIN)/pytest -q -s tests/security/test_fuzz.py

bench: $(DEV_STAMP)
	$(BIN)/python bench/protocol_resolve.py

# Cloud Sync throughput, latency and notification fan-out against a `ledgersync serve`
# subprocess, on SQLite and on an embedded PostgreSQL (docs/benchmarks.md).
bench-cloudsync: $(DEV_STAMP)
	$(BIN)/python -m bench.cloudsync

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
	rm -rf tests/interop/node_modules tests/interop/.cache
