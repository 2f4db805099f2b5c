#!/usr/bin/env bash
# Installs the community MCP servers Driftwise ships bindings for, at pinned versions, into a git-ignored
# folder (default .community-mcp/ in the repository): each Python server in its own venv (their SDK pins
# differ from ours), kubernetes-mcp-server from npm. pagerduty-mcp needs Python >= 3.12: it is installed
# only when such an interpreter is found (PYTHON312, python3.13, python3.12, or pyenv's).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${COMMUNITY_MCP_DIR:-.community-mcp}"
KUBERNETES_MCP_SERVER=0.0.67
MCP_GRAFANA=2.1.1
PROMETHEUS_MCP_SERVER=1.6.2
PAGERDUTY_MCP=1.1.0
PYTHON="${PYTHON:-python3}"
mkdir -p "$DEST"

venv() {  # venv DIR PYTHON PACKAGE==VERSION: a venv holding one package at its pinned version
  local dir="$DEST/$1" python="$2" spec="$3"
  if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$spec" ]; then return; fi
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "$spec"
  echo "$spec" > "$dir/.installed"
}

venv mcp-grafana "$PYTHON" "mcp-grafana==$MCP_GRAFANA"
venv prometheus-mcp-server "$PYTHON" "prometheus-mcp-server==$PROMETHEUS_MCP_SERVER"

npm_dir="$DEST/npm"
if [ ! -x "$npm_dir/node_modules/.bin/kubernetes-mcp-server" ] \
   || [ "$(cat "$npm_dir/.installed" 2>/dev/null)" != "kubernetes-mcp-server@$KUBERNETES_MCP_SERVER" ]; then
  mkdir -p "$npm_dir"
  npm install -s --no-audit --no-fund --prefix "$npm_dir" "kubernetes-mcp-server@$KUBERNETES_MCP_SERVER" >/dev/null
  echo "kubernetes-mcp-server@$KUBERNETES_MCP_SERVER" > "$npm_dir/.installed"
fi

python312=""
for candidate in "${PYTHON312:-}" python3.13 python3.12; do
  if [ -n "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    python312="$candidate"; break
  fi
done
if [ -z "$python312" ] && command -v pyenv >/dev/null; then
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9])' || true); do
    python312="$(pyenv root)/versions/$v/bin/python3"; break
  done
fi
if [ -n "$python312" ]; then
  venv pagerduty-mcp "$python312" "pagerduty-mcp==$PAGERDUTY_MCP"
else
  echo "community-mcp: no Python >= 3.12 found: pagerduty-mcp not installed (its binding is shipped untested)" >&2
fi
