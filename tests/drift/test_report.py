"""DriftReport building from the sandbox's Argo CD API (managed-resources), for every visible scenario.

The sandbox runs in process (httpx ASGITransport): what is tested is the report, not processes."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette

from agents.drift.argocd_client import ArgoCDClient
from agents.drift.clock import Clock
from agents.drift.errors import ObserveError
from agents.drift.observe import Observer
from agents.kit.diff import escape
from driftwise.sandbox.app import build_apps
from driftwise.sandbox.state import Sandbox
from protocol.models import REDACTED, ArgoNotification, DriftEvent
from tests.support.processes import SCENARIOS

ARGO_TOKEN = "sandbox-argocd-token"
ARGOCD = "http://argocd"
SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))


class InProcessSandbox:
    def __init__(self, argocd: Starlette) -> None:
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=argocd), base_url=ARGOCD)

    async def activate(self, scenario_id: str) -> None:
        r = await self.http.post("/sandbox/scenarios/activate", json={"id": scenario_id})
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def argocd_app() -> Starlette:
    """The scenarios are parsed once per module; each test activates the one it reads."""
    state = Sandbox()
    state.load([SCENARIOS])
    return build_apps(state)["argocd"]


@pytest.fixture
async def sandbox(argocd_app: Starlette) -> AsyncIterator[InProcessSandbox]:
    sb = InProcessSandbox(argocd_app)
    try:
        yield sb
    finally:
        await sb.http.aclose()


def _at(doc: Any, pointer: str) -> Any:
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc


async def _utc_now() -> datetime:
    return datetime.now(UTC)


def _event(notification: dict) -> DriftEvent:
    n = ArgoNotification.model_validate(notification)
    return DriftEvent(event_id=str(uuid.uuid4()), idempotency_key=DriftEvent.key_for(n),
                      received_at=datetime.now(UTC), notification=n)


def _secret_values(scenario: dict) -> list[str]:
    values = []
    for r in scenario["argocd"]["resources"]:
        for side in ("target", "live"):
            obj = r.get(side) or {}
            if obj.get("kind") == "Secret":
                values += [str(v) for f in ("data", "stringData") for v in (obj.get(f) or {}).values()]
    return values


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
async def test_report_from_sandbox(sandbox: InProcessSandbox, path) -> None:
    scenario = yaml.safe_load(path.read_text())
    await sandbox.activate(scenario["id"])
    clock = Clock(sandbox.http, f"{ARGOCD}/sandbox/clock")
    observer = Observer(ArgoCDClient(sandbox.http, ARGOCD, ARGO_TOKEN, 5.0))
    report = await observer.observe(_event(scenario["notification"]), clock.now)
    # stamped with the sandbox's clock (the scenario's `now`), not this machine's
    now = datetime.fromisoformat(scenario["now"].replace("Z", "+00:00"))
    assert report.observed_at == now
    assert report.application == scenario["notification"]["app"]
    assert len(report.sync_windows) == len(scenario["argocd"]["project"]["spec"].get("syncWindows") or [])
    expected = {(r["kind"], r["name"]) for r in scenario["argocd"]["resources"]}
    assert {(d.ref.kind, d.ref.name) for d in report.drifts} == expected
    by_name = {(r["kind"], r["name"]): r for r in scenario["argocd"]["resources"]}
    for drift in report.drifts:
        assert drift.changes, f"{drift.ref.key} has no changes"
        source = by_name[(drift.ref.kind, drift.ref.name)]
        for change in drift.changes:
            assert not change.path.startswith(("/metadata/managedFields", "/status", "/metadata/resourceVersion"))
            if change.redacted:
                assert drift.ref.kind == "Secret"
                assert REDACTED in (change.before, change.after)
                continue
            if change.op != "add":
                assert change.before == _at(source["target"], change.path)
            if change.op != "remove":
                assert change.after == _at(source["live"], change.path)
        managers = {m["manager"] for m in (source["live"].get("metadata") or {}).get("managedFields") or []}
        if managers - {"argocd-controller"}:
            assert drift.changed_by and set(drift.changed_by) <= managers
            assert "argocd-controller" not in drift.changed_by
            assert drift.changed_at is not None and drift.changed_at <= now
    # Secret values never reach the report, in any form.
    text = report.model_dump_json()
    for value in _secret_values(scenario):
        assert value not in text
    for drift in report.drifts:
        if drift.ref.kind == "Secret":
            assert drift.live and all(v == REDACTED for v in (drift.live.get("data") or {}).values())
            assert any(c.redacted and c.path.startswith("/data/") for c in drift.changes)
            changed = [k for k, v in (by_name[("Secret", drift.ref.name)]["target"].get("data") or {}).items()
                       if (by_name[("Secret", drift.ref.name)]["live"].get("data") or {}).get(k) != v]
            assert {c.path for c in drift.changes if c.redacted} == {f"/data/{escape(k)}" for k in changed}


async def test_unknown_application_is_a_named_observe_error(sandbox: InProcessSandbox) -> None:
    scenario = yaml.safe_load(SCENARIO_FILES[0].read_text())
    await sandbox.activate(scenario["id"])
    observer = Observer(ArgoCDClient(sandbox.http, ARGOCD, ARGO_TOKEN, 5.0))
    with pytest.raises(ObserveError) as err:
        await observer.observe(_event({**scenario["notification"], "app": "no-such-app"}), _utc_now)
    assert err.value.kind == "argocd_not_found"
    bad = Observer(ArgoCDClient(sandbox.http, ARGOCD, "wrong", 5.0))
    with pytest.raises(ObserveError) as err:
        await bad.observe(_event(scenario["notification"]), _utc_now)
    assert err.value.kind == "argocd_auth"


def test_report_json_is_stable() -> None:
    # The report digest in the audit hashes canonical JSON: same report, same digest.
    from agents.drift.recording import report_digest

    a = {"b": 1, "a": [1, {"y": 2, "x": 1}]}
    assert report_digest(a) == report_digest(json.loads(json.dumps(a, sort_keys=True)))


async def test_the_applications_own_project_wins_over_the_notifications(sandbox: InProcessSandbox) -> None:
    """The project is read alongside the application, by the name the notification gives; when that
    name is wrong (or names a project that does not exist), the application's own project is read."""
    scenario = yaml.safe_load((SCENARIOS / "v02-configmap-environment-tuning.yaml").read_text())
    await sandbox.activate(scenario["id"])
    windows = scenario["argocd"]["project"]["spec"].get("syncWindows") or []
    assert windows  # the scenario chosen for having sync windows
    observer = Observer(ArgoCDClient(sandbox.http, ARGOCD, ARGO_TOKEN, 5.0))
    for named in ("no-such-project", scenario["notification"]["project"]):
        report = await observer.observe(_event({**scenario["notification"], "project": named}), _utc_now)
        assert report.project == scenario["argocd"]["project"]["metadata"]["name"]
        assert len(report.sync_windows) == len(windows)
