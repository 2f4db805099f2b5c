# Two commands matter: `make demo` (set up, then run the demo) and `make test` (set up, then run every test).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench eval postgres

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/driftwise demo

lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: setup
	$(BIN)/python -m driftwise.benchmarks.signing
	$(BIN)/python -m driftwise.benchmarks.mcp_latency

eval: setup
	$(BIN)/driftwise eval scenarios

# PostgreSQL 15 for tests/stores (Debian; the tests start a private cluster of their own, no service needed)
postgres:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15)
