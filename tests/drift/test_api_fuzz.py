"""Property-based fuzzing of the drift agent's own HTTP API from its published OpenAPI document.

The drift agent's app (webhook, decisions, approvals) runs under uvicorn on a loopback socket, over its
real event store, audit log and runner; schemathesis reads `/openapi.json` from it and generates
requests for every operation, both ones that fit the schema and ones that break it, with and without
credentials. The property: no request gets a 5xx. The test reports how many cases it tried.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis import GenerationMode

from agents.drift.admission import Admission
from agents.drift.app import create_app
from agents.drift.audit import AuditLog
from agents.drift.clock import Clock
from agents.drift.config import ArgoCDConfig, DriftConfig
from agents.drift.metrics import DriftMetrics
from agents.drift.report import PromotionRule, build_report
from agents.drift.runner import DecisionRunner
from agents.drift.store import EventStore
from protocol.models import ArgoNotification, Decision, DecisionState, DriftEvent
from protocol.report import AgreementReport
from protocol.signing import Signer, generate_key

pytestmark = pytest.mark.slow

CASES = 500
"""Hypothesis examples over all operations (~15 s of CPU; 40-60 s of wall time on a loaded 2-core machine)."""
HOOK, APPROVALS = "fuzz-hook", "fuzz-approvals"


class NoArgo:
    """Admission never runs here (nothing is submitted to a runner): any Argo CD read is a test bug."""

    async def application(self, name: str, app_namespace: str | None = None):  # type: ignore[no-untyped-def]
        raise AssertionError("no Argo CD read expected")

    managed_resources = application


@contextmanager
def served(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """The drift agent's HTTP API on a loopback port, in its own thread and event loop; yields its URL and
    the ids of decisions seeded in it (one awaiting approval, so that answers reach the runner)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # a free port, chosen by the OS and held: listening before the server starts
    sock.listen(64)
    port = sock.getsockname()[1]
    config = DriftConfig(state_dir=tmp_path, private_key_path=tmp_path / "k", trust_store_path=tmp_path / "t",
                         argocd=ArgoCDConfig(url="http://127.0.0.1:1"), approvals_token=SecretStr(APPROVALS),
                         webhook_token=SecretStr(HOOK), decision_deadline_s=2.0)
    ready = threading.Event()
    seeded: list[str] = []
    state: dict[str, object] = {}

    async def main() -> None:
        import uvicorn

        store, audit = EventStore(config.db_path), AuditLog(config.db_path)
        await store.open()
        await audit.open()
        async with httpx.AsyncClient() as http:
            key = generate_key("drift")
            # a runner without a graph: the API can only reach its store-side paths (wait, refused answers)
            runner = DecisionRunner(config, None, store, audit, Signer("drift", key),  # type: ignore[arg-type]
                                    Clock(http, None), DriftMetrics())
            admission = Admission(store, NoArgo(), audit, runner.submit, runner.wait, jobs=None, wait_bound_s=2.0)
            accepted: list[Decision] = []

            async def on_accepted(decision: Decision) -> None:
                accepted.append(decision)

            async def resume(event_id: str, approval: object) -> Decision:
                return await runner.resume(event_id, approval, 2.0)  # type: ignore[arg-type]

            async def wait(event_id: str, timeout_s: float, until_verdict: bool) -> Decision | None:
                return await admission.wait(event_id, min(timeout_s, 0.5), until_verdict)

            for i, decision_state in enumerate((DecisionState.RECEIVED, DecisionState.SUPERSEDED)):
                n = ArgoNotification(app=f"seeded-{i}", project="prod", revision="5f2c1e9")
                event = DriftEvent(event_id=str(uuid.uuid4()), idempotency_key=DriftEvent.key_for(n),
                                   received_at=datetime.now(UTC), notification=n)
                decision, _ = await store.accept(event, datetime.now(UTC))
                await store.save(decision.model_copy(update={"state": decision_state, "superseded_by": "other"}))
                seeded.append(event.event_id)
            async def report(since: timedelta, project: str | None) -> AgreementReport:
                return build_report(await store.list(), datetime.now(UTC), since=since, project=project,
                                    mode_for=config.mode_for, rule=PromotionRule())

            app = create_app(config, store, DriftMetrics(), on_accepted, resume=admission.guarded(resume), wait=wait,
                             report=report)
            server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off", access_log=False))
            state["server"] = server
            ready.set()
            await server.serve(sockets=[sock])
        await audit.close()
        await store.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(30), "the drift agent's app did not start"
    try:
        yield f"http://127.0.0.1:{port}", seeded
    finally:
        state["server"].should_exit = True  # type: ignore[attr-defined]
        thread.join(30)
        sock.close()


def test_no_request_to_the_published_api_gets_a_5xx(tmp_path: Path) -> None:
    with served(tmp_path) as (base_url, seeded), requests.Session() as session:
        document = session.get(f"{base_url}/openapi.json", timeout=10).json()
        schema = schemathesis.openapi.from_dict(document)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.path for op in operations} >= {"/v1/webhooks/argocd", "/v1/decisions/{event_id}/approve"}
        strategies = []
        for op in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategies.append(op.as_strategy(generation_mode=mode))
                if "{event_id}" in op.path:  # the seeded decisions too, not only ids that match nothing
                    strategies += [op.as_strategy(generation_mode=mode, path_parameters={"event_id": event_id})
                                   for event_id in seeded]
        tried: Counter[str] = Counter()
        statuses: Counter[int] = Counter()
        server_errors: list[str] = []

        @settings(max_examples=CASES, deadline=None, database=None, derandomize=False,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies), credentials=st.sampled_from(["right"] * 6 + ["none", "wrong"]))
        def one(case: schemathesis.Case, credentials: str) -> None:
            token = HOOK if case.path.startswith("/v1/webhooks") else APPROVALS
            headers = {"none": {}, "wrong": {"Authorization": "Bearer nope"},
                       "right": {"Authorization": f"Bearer {token}"}}[credentials]
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=10)
            tried[f"{case.method} {case.path}"] += 1
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                server_errors.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                     f"{response.text[:200]}")

        one()
    total = sum(tried.values())
    print(f"\nfuzz: {total} cases over {len(tried)} operations, statuses {dict(sorted(statuses.items()))}, "
          f"5xx: {len(server_errors)}")
    assert total >= CASES // 2, tried
    assert len(tried) == 6, tried
    assert not server_errors, server_errors[:5]
