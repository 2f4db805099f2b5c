"""deploy/: `kubectl kustomize` builds it (and deploy/sqlite/); every built-in object validates against the
Kubernetes API schema; the drift agent runs two replicas on PostgreSQL (DSN from a Secret, no volume, a
PodDisruptionBudget, spread over nodes, ready only while the database answers), or one on SQLite;
least-privilege RBAC and Secrets; NetworkPolicies allow exactly the paths Driftwise uses; the settings
ConfigMap plus each Deployment's env load into driftwise.settings."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.kustomize import DEPLOY, ROOT, kustomize
from tests.deploy.kustomize import of_kind as _of
from tests.deploy.settings_env import settings_from

KUBERNETES_VERSION = "1.35"
PROCESSES = {  # component -> container port
    "drift-agent": 8600,
    "security": 8601,
    "compliance": 8602,
    "mcp-prometheus": 8611,
    "mcp-grafana": 8612,
    "mcp-pagerduty": 8613,
    "mcp-kubernetes": 8614,
}
CRD_KINDS = {("argoproj.io/v1alpha1", "Application")}


@pytest.fixture(scope="module")
def built() -> list[dict[str, Any]]:
    return kustomize(DEPLOY)


@pytest.fixture(scope="module")
def built_sqlite() -> list[dict[str, Any]]:
    return kustomize(DEPLOY / "sqlite")


def _validate(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_builds_every_process(built: list[dict[str, Any]]) -> None:
    deployments, services = _of(built, "Deployment"), _of(built, "Service")
    accounts = _of(built, "ServiceAccount")
    for component in PROCESSES:
        name = f"driftwise-{component}"
        assert name in deployments and name in services and name in accounts, component
    assert all(
        d["metadata"]["namespace"] == "driftwise"
        for d in built
        if d["kind"] != "Namespace" and d["kind"] not in ("ClusterRole", "ClusterRoleBinding")
    )


def test_every_object_validates(built: list[dict[str, Any]], built_sqlite: list[dict[str, Any]]) -> None:
    for doc in [*built, *built_sqlite]:
        _validate(doc)


def test_validation_can_fail(built: list[dict[str, Any]]) -> None:
    deployment = next(d for d in built if d["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken)


@pytest.mark.parametrize(
    "name", ["notifications-cm.yaml", "argocd-cm-health.yaml", "argocd-rbac.yaml", "application-example.yaml"]
)
def test_argocd_manifests_validate(name: str) -> None:
    for doc in yaml.safe_load_all((DEPLOY / "argocd" / name).read_text()):
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            continue  # a CRD: structurally checked in test_argocd.py
        _validate(doc)


def test_secret_examples_validate() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "secrets" / "secrets.example.yaml").read_text()))
    for doc in docs:
        _validate(doc)
    assert {d["metadata"]["name"] for d in docs} >= _referenced_names_example()


def _referenced_names_example() -> set[str]:
    return {
        "driftwise-argocd-token",
        "driftwise-drift-api",
        "driftwise-drift-peers",
        "driftwise-state-dsn",
        "driftwise-peer-tokens",
        "driftwise-trust",
        "driftwise-key-drift",
        "driftwise-key-security",
        "driftwise-key-compliance",
        "driftwise-grafana-token",
        "driftwise-pagerduty-token",
    }


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def _referenced(pod: dict[str, Any]) -> set[str]:
    """Names of Secrets and ConfigMaps a pod reads (env and volumes)."""
    names: set[str] = set()
    for container in pod["containers"]:
        for env in container.get("env", []):
            ref = env.get("valueFrom", {})
            for kind in ("secretKeyRef", "configMapKeyRef"):
                if kind in ref:
                    names.add(ref[kind]["name"])
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
        if "configMap" in volume:
            names.add(volume["configMap"]["name"])
        for source in volume.get("projected", {}).get("sources", []):
            for kind in ("secret", "configMap"):
                if kind in source:
                    names.add(source[kind]["name"])
    return names


def test_secrets_reach_only_their_process(built: list[dict[str, Any]]) -> None:
    readers: dict[str, set[str]] = {}
    for name, deployment in _of(built, "Deployment").items():
        for ref in _referenced(_pod(deployment)):
            readers.setdefault(ref, set()).add(name.removeprefix("driftwise-"))
    assert readers["driftwise-argocd-token"] == {"drift-agent"}
    assert readers["driftwise-drift-api"] == readers["driftwise-drift-peers"] == {"drift-agent"}
    assert readers["driftwise-state-dsn"] == {"drift-agent"}
    assert readers["driftwise-grafana-token"] == {"mcp-grafana"}
    assert readers["driftwise-pagerduty-token"] == {"mcp-pagerduty"}
    assert readers["driftwise-mcp-kubernetes-token"] == {"mcp-kubernetes"}
    for agent in ("drift", "security", "compliance"):
        component = "drift-agent" if agent == "drift" else agent
        assert readers[f"driftwise-key-{agent}"] == {component}
    # Every Secret or ConfigMap a pod reads is built here or documented in the secrets example.
    built_names = {d["metadata"]["name"] for d in built if d["kind"] in ("Secret", "ConfigMap")}
    assert set(readers) <= built_names | _referenced_names_example()


def test_pods_are_locked_down(built: list[dict[str, Any]]) -> None:
    for name, deployment in _of(built, "Deployment").items():
        pod = _pod(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["serviceAccountName"] == name
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
        assert container["readinessProbe"] and container["livenessProbe"], name
        port = PROCESSES[name.removeprefix("driftwise-")]
        assert container["args"][-2:] == ["--port", str(port)], name
        assert container["ports"][0]["containerPort"] == port, name
        assert container["image"].startswith("ghcr.io/example/driftwise:"), name


# --- the drift agent: replicas on PostgreSQL, or one on SQLite ---------------------------------------

DRIFT = "driftwise-drift-agent"
DSN_ENV = "DRIFTWISE_STATE__DSN"


def _drift(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The drift agent's Deployment and its one container."""
    deployment = _of(docs, "Deployment")[DRIFT]
    (container,) = _pod(deployment)["containers"]
    return deployment, container


def test_drift_agent_runs_replicas_on_postgres(built: list[dict[str, Any]]) -> None:
    deployment, container = _drift(built)
    spec, pod = deployment["spec"], _pod(deployment)
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    # the DSN from its Secret, nothing of the state on a volume
    (dsn,) = [e for e in container["env"] if e["name"] == DSN_ENV]
    assert dsn["valueFrom"] == {"secretKeyRef": {"name": "driftwise-state-dsn", "key": "dsn"}}
    assert not _of(built, "PersistentVolumeClaim")
    assert not any("persistentVolumeClaim" in v for v in pod["volumes"])
    (state,) = [v for v in pod["volumes"] if v["name"] == "state"]
    assert state == {"name": "state", "emptyDir": {}}
    # ready = the state database answers; alive = the process answers
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # one replica per node, hard; zones where there are any, soft
    labels = pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert spread["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "ScheduleAnyway"
    for constraint in spread.values():
        assert constraint["maxSkew"] == 1
        assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()
    # a drain leaves one serving, and a replica that is not ready never blocks it
    (budget,) = _of(built, "PodDisruptionBudget").values()
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert 1 <= budget["spec"]["minAvailable"] < spec["replicas"]
    assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert budget["metadata"]["namespace"] == "driftwise"


def test_readiness_probe_outlasts_the_database_probe(built: list[dict[str, Any]], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """/readyz answers within state.probe_timeout_s: the kubelet must wait longer, or a slow answer is a failure."""
    _, container = _drift(built)
    (configmap,) = [d for d in built
                    if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("driftwise-settings")]
    config = tmp_path / "settings.yaml"
    config.write_text(configmap["data"]["settings.yaml"])
    settings = settings_from(monkeypatch, {}, config)
    assert settings.state.probe_timeout_s < container["readinessProbe"]["timeoutSeconds"]


def test_sqlite_overlay_runs_one_replica_on_a_volume(built: list[dict[str, Any]],
                                                     built_sqlite: list[dict[str, Any]]) -> None:
    deployment, container = _drift(built_sqlite)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # one writer on a ReadWriteOnce volume
    assert DSN_ENV not in {e["name"] for e in container["env"]}
    (claim,) = _of(built_sqlite, "PersistentVolumeClaim").values()
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    (state,) = [v for v in _pod(deployment)["volumes"] if v["name"] == "state"]
    assert state == {"name": "state", "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
    assert not _of(built_sqlite, "PodDisruptionBudget")  # with one replica it could only block drains
    # everything else is the base as it is
    def rest(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [d for d in docs if d["kind"] not in ("PersistentVolumeClaim", "PodDisruptionBudget")
                and d["metadata"]["name"] != DRIFT]

    assert rest(built_sqlite) == rest(built)


def test_rbac_is_read_only_and_only_for_mcp_kubernetes(built: list[dict[str, Any]]) -> None:
    bindings = [d for d in built if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    subjects = {(s["kind"], s["name"]) for b in bindings for s in b["subjects"]}
    assert subjects == {("ServiceAccount", "driftwise-mcp-kubernetes")}
    for role in [d for d in built if d["kind"] in ("Role", "ClusterRole")]:
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
            assert "*" not in rule["resources"] and "*" not in rule["apiGroups"], rule
            assert "secrets" not in rule["resources"], rule


# --- NetworkPolicies: a small evaluator over podSelector/namespaceSelector matchLabels ----------

ARGO_NOTIFY = ({"app.kubernetes.io/name": "argocd-notifications-controller"}, "argocd")


def _pod_labels(component: str) -> tuple[dict[str, str], str]:
    return {"app.kubernetes.io/name": f"driftwise-{component}"}, "driftwise"


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "the evaluator understands matchLabels only"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer_matches(peer: dict[str, Any], labels: dict[str, str], namespace: str) -> bool:
    if "ipBlock" in peer:
        return False
    ns_ok = (
        _matches(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace})
        if "namespaceSelector" in peer
        else namespace == "driftwise"
    )
    return ns_ok and _matches(peer.get("podSelector", {}), labels)


def _allowed(
    policies: list[dict[str, Any]],
    direction: str,
    subject: tuple[dict[str, str], str],
    peer: tuple[dict[str, str], str],
    port: int,
) -> bool:
    """Whether the union of policies selecting `subject` lets it talk to/from `peer` on `port`."""
    labels, namespace = subject
    selecting = [
        p
        for p in policies
        if namespace == "driftwise"
        and _matches(p["spec"]["podSelector"], labels)
        and direction.capitalize() in p["spec"]["policyTypes"]
    ]
    if not selecting:
        return True  # not isolated in that direction
    key, peers_key = ("ingress", "from") if direction == "ingress" else ("egress", "to")
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            ports = rule.get("ports")
            if ports is not None and not any(p.get("port") == port for p in ports):
                continue
            if peers_key not in rule or any(_peer_matches(x, *peer) for x in rule[peers_key]):
                return True  # a rule without `to`/`from` matches every peer
    return False


def _path_open(
    policies: list[dict[str, Any]], source: tuple[dict[str, str], str], target: tuple[dict[str, str], str], port: int
) -> bool:
    egress = source[1] != "driftwise" or _allowed(policies, "egress", source, target, port)
    ingress = target[1] != "driftwise" or _allowed(policies, "ingress", target, source, port)
    return egress and ingress


ALLOWED_PATHS = [
    ("drift-agent", "mcp-prometheus"),
    ("drift-agent", "mcp-grafana"),
    ("drift-agent", "mcp-pagerduty"),
    ("drift-agent", "mcp-kubernetes"),
    ("drift-agent", "security"),
    ("drift-agent", "compliance"),
    ("security", "compliance"),
    ("security", "mcp-kubernetes"),
]
DENIED_PATHS = [
    ("compliance", "mcp-kubernetes"),
    ("compliance", "security"),
    ("security", "drift-agent"),
    ("mcp-prometheus", "drift-agent"),
    ("mcp-kubernetes", "mcp-prometheus"),
    ("security", "mcp-prometheus"),
    ("mcp-pagerduty", "compliance"),
]


def test_network_paths(built: list[dict[str, Any]]) -> None:
    policies = list(_of(built, "NetworkPolicy").values())
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress") and not p["spec"].get("egress")
    ]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    for source, target in ALLOWED_PATHS:
        assert _path_open(policies, _pod_labels(source), _pod_labels(target), PROCESSES[target]), (source, target)
    for source, target in DENIED_PATHS:
        assert not _path_open(policies, _pod_labels(source), _pod_labels(target), PROCESSES[target]), (source, target)
    drift = _pod_labels("drift-agent")
    assert _path_open(policies, ARGO_NOTIFY, drift, 8600)
    assert not _path_open(policies, ({"app.kubernetes.io/name": "argocd-server"}, "argocd"), drift, 8600)
    assert not _path_open(policies, ({"app": "x"}, "default"), drift, 8600)
    # Only the drift agent reaches the Argo CD API.
    argocd_server = ({"app.kubernetes.io/name": "argocd-server"}, "argocd")
    assert _path_open(policies, drift, argocd_server, 8080)
    for other in set(PROCESSES) - {"drift-agent"}:
        assert not _path_open(policies, _pod_labels(other), argocd_server, 8080), other
    # Only the drift agent reaches PostgreSQL, in whichever namespace it runs.
    for postgres in (({"app": "postgresql"}, "databases"), ({"cnpg.io/cluster": "driftwise"}, "cnpg")):
        assert _path_open(policies, drift, postgres, 5432), postgres
        for other in set(PROCESSES) - {"drift-agent"}:
            assert not _path_open(policies, _pod_labels(other), postgres, 5432), other


# --- settings: the ConfigMap plus each Deployment's env is what driftwise.settings accepts -------


@pytest.mark.parametrize("component", sorted(PROCESSES))
def test_settings_load_in_each_pod(
    built: list[dict[str, Any]], component: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (configmap,) = [
        d for d in built if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("driftwise-settings")
    ]
    pod = _pod(_of(built, "Deployment")[f"driftwise-{component}"])
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "settings")
    volume = next(v for v in pod["volumes"] if v["name"] == "settings")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]  # the hashed name
    env = {e["name"]: e.get("value", f"secret-{e['name'].lower()}") for e in container["env"]}
    if DSN_ENV in env:  # the Secret holds a postgresql:// URL
        env[DSN_ENV] = "postgresql://driftwise:secret-pw@db.example:5432/driftwise"
    if "DRIFTWISE_DRIFT__PEER_TOKENS" in env:  # the Secret holds a JSON map peer id -> token
        env["DRIFTWISE_DRIFT__PEER_TOKENS"] = '{"sre-bot": "secret-sre-bot"}'
    assert env["DRIFTWISE_CONFIG"] == f"{mount['mountPath']}/settings.yaml"
    config = tmp_path / "settings.yaml"
    config.write_text(configmap["data"]["settings.yaml"])
    settings = settings_from(monkeypatch, env, config)
    assert settings.host == "0.0.0.0"
    assert settings.drift.sandbox_clock_url is None
    assert settings.drift.mode == "shadow"
    services = _of(built, "Service")
    for server in ("prometheus", "grafana", "pagerduty", "kubernetes"):
        conf = getattr(settings.mcp, server)
        assert conf.endpoint == f"http://driftwise-mcp-{server}.driftwise.svc:{conf.port}/mcp"
        assert services[f"driftwise-mcp-{server}"]["spec"]["ports"][0]["port"] == conf.port
    for peer in ("security", "compliance"):
        spec = settings.specialists[peer]
        assert spec.endpoint == f"http://driftwise-{peer}.driftwise.svc:{spec.port}"
        assert services[f"driftwise-{peer}"]["spec"]["ports"][0]["port"] == spec.port == PROCESSES[peer]
    # Tokens came from the Secrets, not the development defaults.
    if component == "drift-agent":
        assert settings.argocd.token is not None
        assert settings.argocd.token.get_secret_value() == "secret-driftwise_argocd__token"
        assert settings.drift.webhook_token.get_secret_value() == "secret-driftwise_drift__webhook_token"
        assert settings.drift.peer_tokens["sre-bot"].get_secret_value() == "secret-sre-bot"
        assert settings.state.dsn is not None
        assert settings.state.dsn.get_secret_value() == env[DSN_ENV]
        assert settings.console.session_key is not None  # replicas share it (the Secret's console-session-key)
        assert settings.console.session_key.get_secret_value() == "secret-driftwise_console__session_key"
    else:
        assert DSN_ENV not in env  # only the drift agent reads the state database


@pytest.mark.slow
def test_generate_script_makes_valid_secrets(tmp_path: Path) -> None:
    driftwise = Path(sys.executable).parent / "driftwise"
    proc = subprocess.run(
        ["sh", str(DEPLOY / "secrets" / "generate.sh"), str(tmp_path / "out")],
        env={"PATH": f"{driftwise.parent}:/usr/bin:/bin:/usr/local/bin", "DRIFTWISE": str(driftwise),
             "PEERS": "sre-bot"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all((tmp_path / "out" / "secrets.yaml").read_text()) if d]
    for doc in docs:
        _validate(doc)
    assert {d["metadata"]["name"] for d in docs} == _referenced_names_example()
    from protocol.signing import TrustStore

    trust = next(d for d in docs if d["metadata"]["name"] == "driftwise-trust")["data"]["trust.json"]
    path = tmp_path / "trust.json"
    path.write_text(trust)
    assert set(TrustStore.load(path).agents()) == {"drift", "security", "compliance"}
    # the same tokens, one file each, for compose.yaml's secrets
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for entry in compose["secrets"].values():
        drawn = tmp_path / "out" / "compose" / Path(entry["file"]).name
        assert drawn.read_text().strip(), drawn
    password = (tmp_path / "out" / "compose" / "postgres-password").read_text().strip()
    dsn = (tmp_path / "out" / "compose" / "state-dsn").read_text().strip()
    assert dsn == f"postgresql://driftwise:{password}@postgres:5432/driftwise"  # compose's postgres service
    webhook = (tmp_path / "out" / "webhook-token").read_text()
    assert (tmp_path / "out" / "compose" / "webhook-token").read_text() == webhook
    peers = next(d for d in docs if d["metadata"]["name"] == "driftwise-drift-peers")
    assert list(json.loads(base64.b64decode(peers["data"]["peer-tokens"]))) == ["sre-bot"]
    api = next(d for d in docs if d["metadata"]["name"] == "driftwise-drift-api")
    assert len(base64.b64decode(api["data"]["console-session-key"]).strip()) >= 32  # console.session_key's minimum
