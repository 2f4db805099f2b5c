"""deploy/monitoring: the PrometheusRule and ServiceMonitor validate against the Prometheus Operator's CRD
models; the rule groups pass `promtool check rules`, and `promtool test rules` (tests/deploy/alerts_test.yaml)
shows each alert firing on the failure it names and quiet otherwise; every metric the rules read is one the
drift agent exports; the ServiceMonitor scrapes the drift agent's Service."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import promql_parser as pp
import pytest
import yaml
from cloudcoil.models.prometheus_operator.v1 import PrometheusRule, ServiceMonitor
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ValidationError

from agents.drift.app import create_app
from agents.drift.metrics import DriftMetrics
from agents.drift.store import EventStore
from protocol.models import Decision, DecisionState
from tests.deploy.kustomize import DEPLOY, kustomize, of_kind
from tests.support.binaries import require_binary
from tests.support.drift_core import drift_config, event

UNIT_TESTS = Path(__file__).with_name("alerts_test.yaml")
CRD_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("monitoring.coreos.com/v1", "PrometheusRule"): PrometheusRule,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ServiceMonitor,
}
ALERTS = {"DriftwiseDecisionsFailing", "DriftwiseApprovalWaitingTooLong", "DriftwiseAuditCheckpointSinkFailing",
          "DriftwiseReplicaWithoutLeases"}


@pytest.fixture(scope="module")
def monitoring() -> list[dict[str, Any]]:
    return kustomize(DEPLOY / "monitoring")


def _rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (rule,) = of_kind(docs, "PrometheusRule").values()
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def validate_crd(doc: dict[str, Any]) -> None:
    """Against the operator's model of the CRD; a field the model drops on the way back is an unknown one."""
    model = CRD_MODELS[(doc["apiVersion"], doc["kind"])]
    back = model.model_validate(doc).model_dump(mode="json", by_alias=True, exclude_none=True)
    if back != doc:
        raise ValueError(f"{doc['kind']} {doc['metadata']['name']}: fields the CRD does not know: "
                         f"{json.dumps(doc, sort_keys=True)} became {json.dumps(back, sort_keys=True)}")


def test_objects_validate_against_the_crds(monitoring: list[dict[str, Any]]) -> None:
    assert {d["kind"] for d in monitoring} == {"PrometheusRule", "ServiceMonitor"}
    for doc in monitoring:
        assert doc["metadata"]["namespace"] == "driftwise"
        validate_crd(doc)


@pytest.mark.parametrize("break_it", ["unknown field", "bad duration"])
def test_crd_validation_can_fail(monitoring: list[dict[str, Any]], break_it: str) -> None:
    (rule,) = of_kind(monitoring, "PrometheusRule").values()
    broken = json.loads(json.dumps(rule))
    first = broken["spec"]["groups"][0]["rules"][0]
    if break_it == "unknown field":
        first["fore"] = first.pop("for")
    else:
        first["for"] = "5 minutes"
    with pytest.raises((ValidationError, ValueError)):
        validate_crd(broken)


def test_the_alerts_asked_for_each_with_severity_and_text(monitoring: list[dict[str, Any]]) -> None:
    rules = _rules(monitoring)
    assert {r["alert"] for r in rules} == ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert rule.get("for"), rule["alert"]


@pytest.fixture
def rule_file(monitoring: list[dict[str, Any]], tmp_path: Path) -> Path:
    """The PrometheusRule's groups as a Prometheus rule file, beside a copy of the promtool unit tests."""
    (rule,) = of_kind(monitoring, "PrometheusRule").values()
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("promtool"), *args], capture_output=True, text=True, timeout=60, check=False)


def test_promtool_checks_the_rules(rule_file: Path) -> None:
    proc = _run("check", "rules", str(rule_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout


def test_promtool_check_can_fail(rule_file: Path) -> None:
    groups = yaml.safe_load(rule_file.read_text())
    groups["groups"][0]["rules"][0]["expr"] = "sum(rate(driftwise_decisions_total[15m]) > "
    rule_file.write_text(yaml.safe_dump(groups))
    assert _run("check", "rules", str(rule_file)).returncode != 0


def test_each_alert_fires_on_its_failure_and_stays_quiet_otherwise(rule_file: Path) -> None:
    cases = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    checks = [c for case in cases for c in case["alert_rule_test"]]
    for alert in ALERTS:  # every alert has a case where it fires and one where it does not
        assert any(c["alertname"] == alert and c["exp_alerts"] for c in checks), alert
        assert any(c["alertname"] == alert and not c["exp_alerts"] for c in checks), alert
    proc = _run("test", "rules", str(rule_file.with_name(UNIT_TESTS.name)))
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- every metric a rule reads is one the drift agent exports --------------------------------------


def exported_series() -> set[str]:
    """The series names the drift agent's registry exposes (a counter as <name>_total, a histogram's parts)."""
    names: set[str] = set()
    for family in DriftMetrics().registry.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    return names


def series_read(expr: str) -> set[str]:
    """The metric names an expression selects (PromQL's own parser)."""

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, pp.VectorSelector):
            if node.name:
                yield node.name
        elif isinstance(node, pp.MatrixSelector):
            yield from walk(node.vector_selector)
        elif isinstance(node, pp.Call):
            for arg in node.args:
                yield from walk(arg)
        elif isinstance(node, pp.BinaryExpr):
            yield from walk(node.lhs)
            yield from walk(node.rhs)
        elif isinstance(node, (pp.AggregateExpr, pp.ParenExpr, pp.UnaryExpr, pp.SubqueryExpr)):
            yield from walk(node.expr)
        elif not isinstance(node, (pp.NumberLiteral, pp.StringLiteral)):
            raise AssertionError(f"unexpected PromQL node {type(node).__name__}: extend series_read")

    return set(walk(pp.parse(expr)))


def test_every_metric_the_rules_read_is_exported(monitoring: list[dict[str, Any]]) -> None:
    exported = exported_series()
    read = {rule["alert"]: series_read(rule["expr"]) for rule in _rules(monitoring)}
    assert all(read.values())
    assert {alert: names - exported for alert, names in read.items() if names - exported} == {}
    assert "driftwise_audit_checkpoint_sink_failures_total" in read["DriftwiseAuditCheckpointSinkFailing"]
    assert "driftwise_leases_held" in read["DriftwiseReplicaWithoutLeases"]


def test_the_metric_check_can_fail() -> None:
    assert series_read("sum(rate(driftwise_decision_faliures_total[5m])) / max(driftwise_leases_held)") - \
        exported_series() == {"driftwise_decision_faliures_total"}


def test_the_service_monitor_scrapes_the_drift_agent(monitoring: list[dict[str, Any]]) -> None:
    (monitor,) = of_kind(monitoring, "ServiceMonitor").values()
    service = of_kind(kustomize(DEPLOY), "Service")["driftwise-drift-agent"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


# --- the age of the oldest approval: what DriftwiseApprovalWaitingTooLong reads ----------------------


async def test_metrics_report_the_oldest_pending_approval(tmp_path: Path) -> None:
    config = drift_config(tmp_path)

    async def nothing(_: Decision) -> None:
        return None

    async with EventStore(config.db_path) as store:
        app = create_app(config, store, DriftMetrics(), nothing)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drift") as client:

            async def scraped() -> dict[str, float]:
                text = (await client.get("/metrics")).text
                return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}

            assert scraped_value(await scraped()) == (0.0, 0.0)
            now = datetime.now(UTC)
            for age_h in (2, 5):  # the older one counts; a decided one does not
                waiting = event(app=f"app-{age_h}").model_copy(update={"received_at": now - timedelta(hours=age_h)})
                decision, _ = await store.accept(waiting, now)
                await store.save(decision.model_copy(update={"state": DecisionState.AWAITING_APPROVAL}))
            done = event(app="done").model_copy(update={"received_at": now - timedelta(hours=9)})
            decision, _ = await store.accept(done, now)
            await store.save(decision.model_copy(update={"state": DecisionState.DONE}))
            count, age = scraped_value(await scraped())
    assert count == 2
    assert 5 * 3600 <= age < 5 * 3600 + 600  # seconds since the older one's event arrived (a bound, not a timing)


def scraped_value(samples: dict[str, float]) -> tuple[float, float]:
    return samples["driftwise_pending_approvals"], samples["driftwise_oldest_pending_approval_age_seconds"]


def test_readme_names_every_alert(monitoring: list[dict[str, Any]]) -> None:
    readme = (DEPLOY.parent / "README.md").read_text()
    section = readme[readme.index("## Deploy on Kubernetes"):readme.index("## Run with compose")]
    assert [r["alert"] for r in _rules(monitoring) if r["alert"] not in section] == []
