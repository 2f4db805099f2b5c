# Two commands matter: `make demo` (set up, then run the demo) and `make test` (set up, then run every test).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench eval browser-deps

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

# The console's browser tests (tests/console/test_browser.py): axe-core from npm, pinned (its sha256 is checked
# by the test). Chromium is Debian's: apt-get install -y --no-install-recommends chromium (.ci/run does both).
AXE_CORE_VERSION := 4.14.1
browser-deps:
	npm install --silent --no-save --no-audit --no-fund --no-package-lock --prefix build/npm axe-core@$(AXE_CORE_VERSION)
