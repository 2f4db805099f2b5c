"""Every tool, through the MCP client the agents use (McpPool), against the sandbox's visible scenarios."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from agents.kit.mcp_pool import McpPool
from protocol.context import (
    Annotations,
    Autoscalers,
    Dashboards,
    FieldDescriptions,
    FieldManagers,
    IncidentDetail,
    Incidents,
    KubeEvents,
    KubeObject,
    MemoryReport,
    NamespaceInfo,
    QueryResult,
    RbacReport,
    TrafficReport,
)
from protocol.models import REDACTED, Evidence
from tests.support.mcp_stack import Stack

pytestmark = pytest.mark.slow

NOW = "2026-11-20T16:30:00Z"
OBSERVED = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)


@pytest.fixture
async def pool(stack: Stack) -> AsyncIterator[McpPool]:
    async with McpPool(stack.endpoints, call_timeout_s=5.0) as pool:
        yield pool


async def call(pool: McpPool, server: str, tool: str, **arguments: Any) -> Evidence:
    return await pool.call(server, tool, arguments, evidence_id=f"{server}.{tool}", observed_at=OBSERVED)


def value(evidence: Evidence) -> Any:
    assert evidence.error is None, evidence.error
    return evidence.value


async def test_v01_traffic_spike_incident_and_annotation(stack: Stack, pool: McpPool) -> None:
    stack.activate("v01-payments-emergency-scale-up")
    traffic = value(await call(pool, "prometheus", "workload_traffic", namespace="payments", service="payments-api",
                               at=NOW, baseline_start="2026-11-20T12:00:00Z", baseline_end="2026-11-20T15:30:00Z"))
    assert isinstance(traffic, TrafficReport)
    assert traffic.rate_change is not None and 8 < traffic.rate_change < 12  # ~40 -> ~400 req/s
    assert traffic.error_ratio is not None and traffic.error_ratio < 0.05

    raw = value(await call(pool, "prometheus", "query_range", promql="sum by (code) (rate(http_requests_total[5m]))",
                           start="2026-11-20T10:30:00Z", end=NOW))
    assert isinstance(raw, QueryResult) and raw.result_type == "matrix"
    assert {s.labels["code"] for s in raw.series} == {"200", "500"}
    assert all(len(s.points) <= 120 for s in raw.series)

    incidents = value(await call(pool, "pagerduty", "incidents", service="payments-api",
                                 since="2026-11-20T14:30:00Z", until=NOW))
    assert isinstance(incidents, Incidents) and incidents.service_id
    assert [(i.status, i.priority) for i in incidents.incidents] == [("triggered", "P1")]
    detail = value(await call(pool, "pagerduty", "incident", incident_id=incidents.incidents[0].id))
    assert isinstance(detail, IncidentDetail) and detail.incident.service_name == "payments-api"
    missing = await call(pool, "pagerduty", "incidents", service="no-such-service", since="2026-11-20T14:30:00Z",
                         until=NOW)
    assert isinstance(missing.value, Incidents) and missing.value.service_id is None

    notes = value(await call(pool, "grafana", "annotations", start="2026-11-20T15:30:00Z", end=NOW))
    assert isinstance(notes, Annotations) and "scaling" in notes.annotations[0].tags
    dashboards = value(await call(pool, "grafana", "search_dashboards"))
    assert isinstance(dashboards, Dashboards) and dashboards.dashboards

    managers = value(await call(pool, "kubernetes", "field_managers", api_version="apps/v1", kind="Deployment",
                                name="payments-api", namespace="payments"))
    assert isinstance(managers, FieldManagers)
    assert {m.manager: m.paths for m in managers.managers}["kubectl"] == ["/spec/replicas"]
    events = value(await call(pool, "kubernetes", "events_for", kind="Deployment", name="payments-api",
                              namespace="payments", since="2026-11-20T15:00:00Z"))
    assert isinstance(events, KubeEvents) and events.events[0].reason == "ScalingReplicaSet"
    deployment = value(await call(pool, "kubernetes", "get_object", api_version="apps/v1", kind="Deployment",
                                  name="payments-api", namespace="payments"))
    assert isinstance(deployment, KubeObject) and deployment.found
    assert deployment.object is not None and deployment.object["spec"]["replicas"] == 12  # type: ignore[index]
    namespace = value(await call(pool, "kubernetes", "namespace", name="payments"))
    assert isinstance(namespace, NamespaceInfo) and namespace.found


async def test_v11_memory_near_the_old_limit(stack: Stack, pool: McpPool) -> None:
    stack.activate("v11-oom-limit-raised")
    memory = value(await call(pool, "prometheus", "workload_memory", namespace="storefront", workload="recommender",
                              start="2026-11-20T15:30:00Z", end=NOW))
    assert isinstance(memory, MemoryReport) and len(memory.pods) == 3
    old_limit = 512 * 2**20
    assert all(p.max_bytes is not None and p.max_bytes > old_limit for p in memory.pods)
    events = value(await call(pool, "kubernetes", "events_for", kind="Deployment", name="recommender",
                              namespace="storefront"))
    # its pods' events count for the workload, and so do the OOM kills their status records
    assert {(e.reason, e.source) for e in events.events} == {("OOMKilling", "kernel-monitor"),
                                                              ("OOMKilled", "pod status")}
    assert {e.involved_name for e in events.events if e.source == "pod status"} == {
        "recommender-7c9d8-abcde", "recommender-7c9d8-fghij", "recommender-7c9d8-klmno"}


async def test_v06_hpa_owns_the_replicas(stack: Stack, pool: McpPool) -> None:
    stack.activate("v06-hpa-owned-replicas")
    found = value(await call(pool, "kubernetes", "autoscalers_for", kind="Deployment", name="orders-api",
                             namespace="orders"))
    assert isinstance(found, Autoscalers)
    assert [(a.name, a.min_replicas, a.max_replicas) for a in found.autoscalers] == [("orders-api", 4, 20)]
    other = value(await call(pool, "kubernetes", "autoscalers_for", kind="StatefulSet", name="orders-api",
                             namespace="orders"))
    assert other.autoscalers == []


async def test_v04_rbac_of_the_service_account(stack: Stack, pool: McpPool) -> None:
    stack.activate("v04-rbac-wildcard")
    rbac = value(await call(pool, "kubernetes", "rbac_for", namespace="analytics", service_account="report-builder"))
    assert isinstance(rbac, RbacReport)
    assert [(g.binding_kind, g.role_kind, g.role_name) for g in rbac.grants] == [
        ("RoleBinding", "Role", "report-builder-reader")
    ]
    assert any("*" in r.verbs or "*" in r.resources for r in rbac.grants[0].rules)  # the live, widened Role
    nobody = value(await call(pool, "kubernetes", "rbac_for", namespace="analytics", service_account="other"))
    assert nobody.grants == []


async def test_v08_secret_values_never_leave_the_server(stack: Stack, pool: McpPool) -> None:
    stack.activate("v08-secret-value-changed")
    secret = value(await call(pool, "kubernetes", "get_object", api_version="v1", kind="Secret",
                              name="notifications-credentials", namespace="messaging"))
    assert isinstance(secret, KubeObject) and secret.object is not None
    assert secret.object["data"] == {"API_TOKEN": REDACTED, "DB_PASSWORD": REDACTED}
    assert "bjN3LXBhc3N3b3Jk" not in secret.model_dump_json()
    managers = value(await call(pool, "kubernetes", "field_managers", api_version="v1", kind="Secret",
                                name="notifications-credentials", namespace="messaging"))
    assert "/data/DB_PASSWORD" in {p for m in managers.managers for p in m.paths}


async def test_v12_prometheus_down_is_an_error_result_naming_it(stack: Stack, pool: McpPool) -> None:
    stack.activate("v12-metrics-backend-down")
    down = await call(pool, "prometheus", "workload_traffic", namespace="logistics", service="shipping-api", at=NOW,
                      baseline_start="2026-11-20T12:00:00Z", baseline_end="2026-11-20T15:30:00Z")
    assert down.value is None and down.error is not None
    assert "prometheus unavailable" in down.error and "503" in down.error
    still_up = await call(pool, "kubernetes", "namespace", name="logistics")
    assert still_up.ok


async def test_missing_objects_are_typed_not_errors(stack: Stack, pool: McpPool) -> None:
    stack.activate("v01-payments-emergency-scale-up")
    absent = value(await call(pool, "kubernetes", "get_object", api_version="apps/v1", kind="Deployment",
                              name="nope", namespace="payments"))
    assert absent.found is False and absent.object is None
    ns = value(await call(pool, "kubernetes", "namespace", name="nope"))
    assert ns.found is False


async def test_field_descriptions_of_a_custom_resource_from_its_crd(stack: Stack, pool: McpPool) -> None:
    stack.activate("c01-istio-authorizationpolicy-opened")
    paths = ["/spec/rules/0/from", "/spec/action", "/spec/rules/0/to/0/operation/methods/1",
             "/spec/selector/matchLabels/app", "/spec/rules/0/fromm", "/status/conditions/0", "/metadata/labels/team"]
    got = value(await call(pool, "kubernetes", "field_descriptions", api_version="security.istio.io/v1",
                           kind="AuthorizationPolicy", paths=paths))
    assert isinstance(got, FieldDescriptions) and got.schema_found and not got.truncated
    assert got.source == "customresourcedefinitions/authorizationpolicies.security.istio.io"
    by_path = {f.path: f for f in got.fields}
    assert list(by_path) == paths  # every path asked is answered, in order
    source = by_path["/spec/rules/0/from"]
    assert (source.status, source.schema_path, source.type) == ("described", "spec.rules[].from", "[]object")
    assert source.description == "Optional. `from` specifies the source of a request."
    action = by_path["/spec/action"]
    assert action.enum == ["ALLOW", "DENY", "AUDIT", "CUSTOM"] and "Default is ALLOW" in action.description
    method = by_path["/spec/rules/0/to/0/operation/methods/1"]
    assert (method.schema_path, method.type) == ("spec.rules[].to[].operation.methods[]", "string")
    assert method.description == "Optional. A list of methods as specified in the HTTP request."  # the list's
    label = by_path["/spec/selector/matchLabels/app"]
    assert label.schema_path == "spec.selector.matchLabels[app]" and "pods/VMs" in label.description
    typo = by_path["/spec/rules/0/fromm"]
    assert (typo.status, typo.schema_path, typo.description) == ("not_in_schema", "spec.rules[]", "")
    assert "'fromm'" in typo.note
    status = by_path["/status/conditions/0"]
    assert status.status == "free_form" and status.schema_path == "status"
    assert by_path["/metadata/labels/team"].status == "described"


async def test_field_descriptions_of_a_cluster_scoped_kind_with_defaults(stack: Stack, pool: McpPool) -> None:
    stack.activate("c02-kyverno-clusterpolicy-audit")
    got = value(await call(pool, "kubernetes", "field_descriptions", api_version="kyverno.io/v1",
                           kind="ClusterPolicy", paths=["/spec/validationFailureAction", "/spec/background",
                                                        "/spec/rules/0/validate/pattern/spec"]))
    assert isinstance(got, FieldDescriptions) and got.description.startswith("ClusterPolicy declares validation")
    mode, background, pattern = got.fields
    assert mode.default == "Audit" and mode.enum == ["audit", "enforce", "Audit", "Enforce"]
    assert "block the admission review request (enforce)" in mode.description
    assert background.default is True and background.type == "boolean"
    assert pattern.status == "free_form" and pattern.description.startswith("Pattern specifies an overlay-style")


async def test_a_kind_without_a_crd_is_a_typed_no_schema_answer(stack: Stack, pool: McpPool) -> None:
    stack.activate("c01-istio-authorizationpolicy-opened")
    for api_version, kind in (("acme.example.com/v1", "Widget"), ("security.istio.io/v2", "AuthorizationPolicy")):
        got = value(await call(pool, "kubernetes", "field_descriptions", api_version=api_version, kind=kind,
                               paths=["/spec/a"]))
        assert isinstance(got, FieldDescriptions) and got.schema_found is False and got.fields == []
        assert got.note.startswith(f"the cluster serves no schema for {kind} ({api_version})")
        assert "/openapi/v3 lists no document" in got.note
    widget = value(await call(pool, "kubernetes", "field_descriptions", api_version="acme.example.com/v1",
                              kind="Widget", paths=["/spec/a"]))
    assert "no CustomResourceDefinition widgets.acme.example.com" in widget.note
    wrong_version = value(await call(pool, "kubernetes", "field_descriptions", api_version="security.istio.io/v2",
                                     kind="AuthorizationPolicy", paths=["/spec/a"]))
    assert "serves no schema for v2 (served: v1, v1beta1)" in wrong_version.note
    # a built-in kind: the cluster publishes its schema in /openapi/v3, as an API server does
    built_in = value(await call(pool, "kubernetes", "field_descriptions", api_version="apps/v1", kind="Deployment",
                                paths=["/spec/replicas"]))
    assert isinstance(built_in, FieldDescriptions) and built_in.schema_found is True
    [replicas] = built_in.fields
    assert replicas.status == "described" and replicas.type == "integer"
    assert replicas.description.startswith("Number of desired pods.")
