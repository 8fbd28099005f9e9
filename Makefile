# Two commands set everything up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: `make serve` needs the runtime dependencies only, the other targets the dev extras.
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: serve test lint bench bench-deps bench-cloudsync bench-keyring bench-inspect clean interop-deps fuzz system-deps

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
		src/ledgersync/cli src/ledgersync/wallet src/ledgersync/testing.py
	$(BIN)/lint-imports --no-cache

# Ledger's JavaScript packages for tests/interop (instant once installed; needs node and npm).
interop-deps:
	bash tests/interop/install.sh

# Debian packages the tests drive: headless Chromium and its WebDriver (tests/server/test_homepage.py),
# nginx and systemd-analyze (tests/deploy: `nginx -t`, real HTTPS through deploy/nginx.conf, the
# unit verified). Installed only when missing; apt-get needs root.
TEST_SYSTEM_PACKAGES := chromium chromium-driver nginx systemd
TEST_SYSTEM_FILES := /usr/bin/chromium /usr/bin/chromedriver /usr/sbin/nginx /usr/bin/systemd-analyze
system-deps:
	@missing=""; for f in $(TEST_SYSTEM_FILES); do [ -x "$$f" ] || missing="$$missing $$f"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "missing$$missing: run 'sudo make system-deps' (or apt-get install $(TEST_SYSTEM_PACKAGES)) first" >&2; exit 1; \
		fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get -o DPkg::Lock::Timeout=300 update -qq && \
		apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $(TEST_SYSTEM_PACKAGES); \
	fi

test: lint interop-deps system-deps
	$(BIN)/pytest -q

# A longer, randomized fuzzing campaign against /openapi.json on both backends (a few minutes;
# `make test` runs a short deterministic one). Results: docs/security.md.
fuzz: $(DEV_STAMP)
	LEDGERSYNC_FUZZ_EXAMPLES=1000 LEDGERSYNC_FUZZ_RANDOM=1 $(BIN)/pytest -q -s tests/security/test_fuzz.py

bench: $(DEV_STAMP)
	$(BIN)/python bench/protocol_resolve.py

# The server benchmarks load a pinned `ledgersync serve` with wrk (Debian's package) from the
# other core; installed here, not by `make test`.
bench-deps:
	@if [ ! -x /usr/bin/wrk ]; then \
		if [ "$$(id -u)" -ne 0 ]; then \
			echo "wrk is missing: run 'sudo make bench-deps' (or apt-get install wrk) first" >&2; \
			exit 1; \
		fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get -o DPkg::Lock::Timeout=300 update -qq && \
		apt-get -o DPkg::Lock::Timeout=300 install -y -qq wrk; \
	fi

# Cloud Sync throughput, latency and notification fan-out against a `ledgersync serve`
# subprocess, on SQLite and on an embedded PostgreSQL (docs/benchmarks.md). ARGS=--quick
# for a smoke run.
bench-cloudsync: $(DEV_STAMP) bench-deps
	$(BIN)/python -m bench.cloudsync $(ARGS)

# Key Ring logins, trustchain reads and AddMember writes against the same ceiling.
bench-keyring: $(DEV_STAMP) bench-deps
	$(BIN)/python -m bench.keyring $(ARGS)

# `ledgersync inspect` against Ledger's JavaScript resolver on a 3,000-block trustchain, both as
# whole processes (docs/benchmarks.md); Ledger's packages come from interop-deps.
bench-inspect: $(DEV_STAMP) interop-deps
	$(BIN)/python -m bench.inspect_command $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
	rm -rf tests/interop/node_modules tests/interop/.cache
