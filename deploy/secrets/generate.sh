#!/bin/sh
# Generates every Driftwise Secret (and the public trust store ConfigMap) as YAML for
# `kubectl apply -f`. Nothing is sent to a cluster; keep the output out of Git.
#
#   deploy/secrets/generate.sh OUT_DIR            # needs `driftwise` (or DRIFTWISE=...) and kubectl
#   kubectl apply -f OUT_DIR/secrets.yaml
#
# Fill in the backend credentials first (or edit OUT_DIR/secrets.yaml afterwards):
#   ARGOCD_TOKEN      Argo CD API token of the `driftwise` account (deploy/argocd/README.md)
#   GRAFANA_TOKEN     Grafana service-account token with the Viewer role
#   PAGERDUTY_TOKEN   PagerDuty read-only REST API key
#   STATE_DSN         postgresql://user:password@host:5432/db the drift agent replicas share (state.dsn)
#   PEERS             space-separated ids of agents allowed to ask the drift agent over A2A
#                     (each gets its own token; the drift agent knows a peer by its token)
# The webhook token printed at the end also goes into Argo CD's argocd-notifications-secret.
# OUT_DIR/compose/ gets the same tokens as one file each, for compose.yaml's secrets
# (DRIFTWISE_SECRETS=OUT_DIR/compose docker compose up -d).
set -eu

out=${1:?usage: generate.sh OUT_DIR}
driftwise=${DRIFTWISE:-driftwise}
namespace=${NAMESPACE:-driftwise}
mkdir -p "$out/keys"
umask 077

token() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }

# One Ed25519 key per agent; the trust store pins each public key to its agent id.
rm -f "$out/keys/trust.json"
for agent in drift security compliance; do
  "$driftwise" keys generate --agent "$agent" --out "$out/keys" --trust "$out/keys/trust.json" >/dev/null
done

webhook_token=$(token)
approvals_token=$(token)
mkdir -p "$out/compose"
for role in security compliance mcp-prometheus mcp-grafana mcp-pagerduty mcp-kubernetes; do
  token > "$out/compose/$role-token"
done
printf '%s\n' "$webhook_token" > "$out/compose/webhook-token"
printf '%s\n' "$approvals_token" > "$out/compose/approvals-token"
# console sessions: every drift-agent replica signs them with this one key (console.session_key)
python3 -c 'import secrets; print(secrets.token_urlsafe(48))' > "$out/compose/console-session-key"
# compose's profile `replicas`: the postgres service's password and the DSN the drift agent replicas read
token > "$out/compose/postgres-password"
printf 'postgresql://driftwise:%s@postgres:5432/driftwise\n' "$(tr -d '\n' < "$out/compose/postgres-password")" \
  > "$out/compose/state-dsn"
peers='{}'
for peer in ${PEERS:-}; do
  peers=$(python3 -c 'import json, secrets, sys; m = json.loads(sys.argv[1]); m[sys.argv[2]] = secrets.token_urlsafe(32); print(json.dumps(m))' "$peers" "$peer")
done
role() { tr -d '\n' < "$out/compose/$1-token"; }
k() { kubectl create --dry-run=client -o yaml -n "$namespace" "$@"; echo "---"; }
{
  for agent in drift security compliance; do
    k secret generic "driftwise-key-$agent" --from-file="$agent.private.jwk.json=$out/keys/$agent.private.jwk.json"
  done
  k configmap driftwise-trust --from-file="trust.json=$out/keys/trust.json"
  k secret generic driftwise-argocd-token --from-literal=token="${ARGOCD_TOKEN:-REPLACE-with-argocd-account-token}"
  k secret generic driftwise-drift-api \
    --from-literal=webhook-token="$webhook_token" --from-literal=approvals-token="$approvals_token" \
    --from-literal=console-session-key="$(tr -d '\n' < "$out/compose/console-session-key")"
  k secret generic driftwise-drift-peers --from-literal=peer-tokens="$peers"
  k secret generic driftwise-state-dsn \
    --from-literal=dsn="${STATE_DSN:-postgresql://driftwise:REPLACE-password@REPLACE-host:5432/driftwise}"
  k secret generic driftwise-peer-tokens \
    --from-literal=mcp-prometheus="$(role mcp-prometheus)" --from-literal=mcp-grafana="$(role mcp-grafana)" \
    --from-literal=mcp-pagerduty="$(role mcp-pagerduty)" --from-literal=mcp-kubernetes="$(role mcp-kubernetes)" \
    --from-literal=security="$(role security)" --from-literal=compliance="$(role compliance)"
  k secret generic driftwise-grafana-token --from-literal=token="${GRAFANA_TOKEN:-REPLACE-with-grafana-viewer-token}"
  k secret generic driftwise-pagerduty-token --from-literal=token="${PAGERDUTY_TOKEN:-REPLACE-with-pagerduty-read-only-key}"
} > "$out/secrets.yaml"

printf '%s\n' "$webhook_token" > "$out/webhook-token"
echo "wrote $out/secrets.yaml; the Argo CD webhook token is in $out/webhook-token" >&2
