# Two commands matter: `make demo` (set up, then run the demo) and `make test` (set up, then run every test).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench eval postgres browser-deps test-tools

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

test: setup lint test-tools
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

# The console's browser tests (tests/console/test_browser.py): axe-core from npm, pinned (its sha256 is checked
# by the test). Chromium is Debian's: apt-get install -y --no-install-recommends chromium (.ci/run does both).
AXE_CORE_VERSION := 4.14.1
browser-deps:
	npm install --silent --no-save --no-audit --no-fund --no-package-lock --prefix build/npm axe-core@$(AXE_CORE_VERSION)

# Test-only tools outside pyproject, each pinned by hash: OPA's Go engine (tests/requirements-opa.txt says why
# --ignore-requires-python) and the MCP conformance suite with the Node 22 it needs (tools/mcp-conformance).
test-tools: $(BIN)/.opa-bindings tools/mcp-conformance/node_modules/.installed

$(BIN)/.opa-bindings: tests/requirements-opa.txt $(BIN)/.installed
	$(BIN)/pip install -q --no-deps --ignore-requires-python --require-hashes -r tests/requirements-opa.txt
	touch $@

tools/mcp-conformance/node_modules/.installed: tools/mcp-conformance/package.json tools/mcp-conformance/package-lock.json
	npm ci --prefix tools/mcp-conformance --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@
