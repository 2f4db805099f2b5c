"""From Argo CD to the decision: the Application annotation carries a link to the decision's console page.

The applier writes to the sandbox's Argo CD API in process; what is checked is the sandbox's own write
record and the Application it then serves, read by the Lua health check Argo CD runs (tests/deploy).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from agents.drift.acting.applier import LINK_ANNOTATION, STATUS_ANNOTATION, Applier
from agents.drift.acting.argocd_writes import ArgoCDWriter
from agents.drift.acting.store import ActingStore
from agents.drift.argocd_client import ArgoCDClient
from agents.drift.config import ConsoleConfig
from agents.drift.observe import Observer
from driftwise.sandbox.app import build_apps
from driftwise.sandbox.state import Sandbox
from protocol.models import Action, ArgoNotification, DriftEvent, DriftReport, Verdict
from tests.deploy.test_argocd import _configmap, run_health
from tests.support.processes import SCENARIOS

SCENARIO = "v01-payments-emergency-scale-up"
TOKEN = "sandbox-argocd-token"
PUBLIC = "https://driftwise.example.com"


class Argo:
    def __init__(self, sandbox: Sandbox, http: httpx.AsyncClient, tmp_path: Path) -> None:
        self.sandbox, self.http, self.tmp_path = sandbox, http, tmp_path
        self.stores: list[ActingStore] = []
        self.client = ArgoCDClient(http, "http://argocd", TOKEN, 5.0)
        n = ArgoNotification.model_validate(sandbox.scenarios[SCENARIO].notification)
        self.event = DriftEvent(event_id="evt/7 a", idempotency_key=DriftEvent.key_for(n),
                                received_at=datetime.now(UTC), notification=n)

    async def applier(self, console: ConsoleConfig) -> Applier:
        store = ActingStore(self.tmp_path / f"acting-{console.public_url is not None}.sqlite")
        await store.open()
        self.stores.append(store)

        async def get_app(name: str, ns: str) -> dict:
            return await self.client.application_json(name, ns or None)

        return Applier(ArgoCDWriter(self.http, "http://argocd", TOKEN, 5.0), get_app, store, timedelta(hours=1),
                       decision_url=console.decision_url)

    async def report(self) -> DriftReport:
        async def now() -> datetime:
            return datetime.now(UTC)

        return await Observer(self.client).observe(self.event, now)

    def annotation_patches(self) -> list[dict]:
        return [json.loads(w.body["patch"])["metadata"]["annotations"] for w in self.sandbox.writes
                if w.method == "PATCH" and "metadata" in json.loads(w.body["patch"])]

    async def annotations(self) -> dict:
        app = await self.client.application_json(self.event.notification.app, None)
        return app["metadata"].get("annotations") or {}


@pytest.fixture
async def argo(tmp_path: Path) -> AsyncIterator[Argo]:
    sandbox = Sandbox()
    sandbox.load([SCENARIOS])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_apps(sandbox)["argocd"]),
                                 base_url="http://argocd") as http:
        assert (await http.post("/sandbox/scenarios/activate", json={"id": SCENARIO})).status_code == 200
        argo = Argo(sandbox, http, tmp_path)
        yield argo
        for store in argo.stores:
            await store.close()


def _verdict(event_id: str, action: Action) -> Verdict:
    return Verdict(event_id=event_id, action=action, requires_approval=action == Action.ESCALATE,
                   allowed_actions=[action], confidence=0.9, threshold=0.8, decided_at=datetime.now(UTC))


async def test_the_annotation_links_the_decision_page_and_the_health_message_names_it(argo: Argo) -> None:
    applier = await argo.applier(ConsoleConfig(public_url=PUBLIC))
    report = await argo.report()
    await applier.request_approval(report, _verdict(report.event_id, Action.ESCALATE), "advisory",
                                   datetime.now(UTC))
    url = f"{PUBLIC}/console/decisions/evt%2F7%20a"  # the event id quoted whole: one path segment
    (written,) = argo.annotation_patches()
    assert written[LINK_ANNOTATION] == f"Driftwise decision|{url}"
    assert json.loads(written[STATUS_ANNOTATION]) == {"state": "awaiting_approval", "event": "evt/7 a"}
    served = await argo.client.application_json(argo.event.notification.app, None)
    assert served["metadata"]["annotations"][LINK_ANNOTATION] == f"Driftwise decision|{url}"
    health = run_health(_configmap("argocd-cm-health.yaml")["resource.customizations.health.argoproj.io_Application"],
                        served)
    assert health["status"] == "Suspended" and health["message"].endswith(
        f"Driftwise: drift awaiting approval (event evt/7 a): {url}"), health


async def test_the_link_goes_with_the_state_it_belongs_to(argo: Argo) -> None:
    applier = await argo.applier(ConsoleConfig(public_url=PUBLIC + "/"))
    report = await argo.report()
    now = datetime.now(UTC)
    await applier.apply(mode="autonomous", action=Action.DEFER, report=report,
                        verdict=_verdict(report.event_id, Action.DEFER), now=now)
    assert LINK_ANNOTATION in await argo.annotations()
    ran = await applier.run_due(now + timedelta(days=8))  # past the next allow window: the deferred sync is due
    assert [a.kind for _, a in ran][-1] == "annotate"
    assert argo.annotation_patches()[-1] == {STATUS_ANNOTATION: None, LINK_ANNOTATION: None}
    assert not {STATUS_ANNOTATION, LINK_ANNOTATION} & set(await argo.annotations())


async def test_without_a_public_url_there_is_no_link(argo: Argo) -> None:
    applier = await argo.applier(ConsoleConfig())
    report = await argo.report()
    await applier.request_approval(report, _verdict(report.event_id, Action.ESCALATE), "advisory",
                                   datetime.now(UTC))
    (written,) = argo.annotation_patches()
    assert set(written) == {STATUS_ANNOTATION}
    assert LINK_ANNOTATION not in await argo.annotations()
