"""The approvals console with thousands of decisions in the store: server time and paint time of its pages.

    python -m driftwise.benchmarks.console [--decisions 5000] [--n 200] [--paints 20]

A SQLite store (the embedded default) is filled with --decisions decisions through the store's own
API, one in five awaiting a human (so the queue holds more than it shows). Then, for the queue page,
its polled fragment, the recent-decisions page and a decision page:
- server time: p50/p99 over --n requests to the drift agent's real app in process (httpx ASGITransport,
  signed in through the console's form): routing, session, SQL, templates; no network;
- paint: Debian's Chromium driven by Playwright against the same app on a real uvicorn on loopback,
  --paints fresh loads each, first paint and first contentful paint from
  performance.getEntriesByType('paint'), and the navigation's responseEnd.
The signing calibration of the same run is printed beside them (machines differ: quote the ratio).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from pydantic import SecretStr

from agents.drift.app import create_app, server_config
from agents.drift.config import ArgoCDConfig, DriftConfig
from agents.drift.metrics import DriftMetrics
from agents.drift.store import EventStore
from driftwise.benchmarks import signing
from protocol.context import Incident, Incidents
from protocol.models import (
    Action,
    ArgoNotification,
    Decision,
    DecisionState,
    Domain,
    DriftEvent,
    DriftReport,
    Evidence,
    FieldChange,
    Recommendation,
    ResourceDrift,
    ResourceRef,
    SignedRecommendation,
    SignedVerdict,
    SyncWindow,
    Verdict,
    VerdictReason,
)

TOKEN = "bench-approvals-token"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PAINTED_JS = "() => performance.getEntriesByType('paint').length >= 2"
PAINT_JS = """() => {
  const paint = Object.fromEntries(performance.getEntriesByType('paint').map(e => [e.name, e.startTime]));
  const nav = performance.getEntriesByType('navigation')[0];
  return {fp: paint['first-paint'] ?? null, fcp: paint['first-contentful-paint'] ?? null,
          response_end: nav ? nav.responseEnd : null};
}"""


def _decision(n: int) -> Decision:
    """Decision number n as the drift agent records one: three drifted resources, evidence, two specialists."""
    at = T0 + timedelta(seconds=37 * n)
    app, project = f"app-{n % 250}", ("prod", "staging", "dev", "payments")[n % 4]
    event_id = f"evt-{n:06d}"
    note = ArgoNotification(app=app, project=project, revision=f"{n:07x}",
                            argocd_url=f"https://argocd.example.com/applications/{app}")
    event = DriftEvent(event_id=event_id, idempotency_key=f"argocd/{app}/{n}", received_at=at, notification=note)
    drifts = [ResourceDrift(ref=ResourceRef(group="apps", kind="Deployment", namespace=app, name=f"{app}-{r}"),
                            changed_by=["kubectl-edit"], changed_at=at, changes=[
                                FieldChange(path="/spec/replicas", op="replace", before=3, after=12),
                                FieldChange(path="/spec/template/spec/containers/0/resources/limits/memory",
                                            op="replace", before="512Mi", after="1Gi"),
                                FieldChange(path="/metadata/annotations/owner", op="add", after="sre on call")])
              for r in range(3)]
    report = DriftReport(event_id=event_id, application=app, project=project, observed_at=at, drifts=drifts,
                         sync_windows=[SyncWindow(kind="allow", schedule="0 22 * * *", duration="2h")])
    evidence = [Evidence(id=f"pd-{i}", source="pagerduty", tool="open_incidents", observed_at=at,
                         value=Incidents(service=app, incidents=[Incident(
                             id=f"P{i}", title="latency above SLO on checkout", status="triggered", created_at=at)]))
                for i in range(4)]
    action = (Action.ENFORCE, Action.DEFER, Action.ALLOW, Action.ESCALATE)[n % 4]

    def rec(agent: str, domain: Domain, confidence: float) -> SignedRecommendation:
        return SignedRecommendation(jws="h.p.s", recommendation=Recommendation(
            event_id=event_id, agent=agent, domain=domain, action=action, confidence=confidence,
            reasoning=f"{agent}: the scale-up matches an open incident; revert after it " * 3,
            evidence_refs=["pd-0"], created_at=at))

    awaiting = n % 5 == 0
    verdict = Verdict(event_id=event_id, action=action, requires_approval=awaiting or action == Action.ESCALATE,
                      allowed_actions=[action, Action.ESCALATE] if action != Action.ESCALATE else [action],
                      confidence=0.72, threshold=0.8, decided_at=at,
                      reasons=[VerdictReason(code="policy.threshold", message="confidence 0.72 < 0.80")])
    return Decision(event=event, state=DecisionState.AWAITING_APPROVAL if awaiting else DecisionState.DONE,
                    mode="advisory", report=report, evidence=evidence,
                    recommendations=[rec("security", Domain.SECURITY, 0.9), rec("compliance", Domain.COMPLIANCE, 0.85)],
                    proposal=rec("drift", Domain.OPERATIONAL, 0.72),
                    verdict=SignedVerdict(jws="h.p.s", verdict=verdict), updated_at=at)


async def fill(store: EventStore, count: int) -> float:
    """Seconds to record `count` decisions through the store's API (accept, then save)."""
    started = time.perf_counter()
    for n in range(count):
        d = _decision(n)
        await store.accept(d.event, d.updated_at, join=False)
        await store.save(d)
    return time.perf_counter() - started


@dataclass(frozen=True)
class Timing:
    p50_ms: float
    p99_ms: float


def _timing(samples: list[float]) -> Timing:
    ordered = sorted(samples)
    return Timing(statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.99) - 1)])


async def sign_in(http: httpx.AsyncClient) -> None:
    form = await http.get("/console/login")
    csrf = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = await http.post("/console/login", data={"csrf_token": csrf, "approver": "bench", "token": TOKEN,
                                                 "next": "/console/"})
    if r.status_code != 303:
        raise RuntimeError(f"the console's sign-in answered {r.status_code}: {r.text[:200]}")


async def server_times(app: object, pages: dict[str, str], n: int) -> dict[str, Timing]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    out: dict[str, Timing] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        await sign_in(http)
        for name, path in pages.items():
            samples = []
            for _ in range(n):
                started = time.perf_counter()
                r = await http.get(path)
                samples.append((time.perf_counter() - started) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"{path} answered {r.status_code}")
            out[name] = _timing(samples)
    return out


async def paint_times(app: object, pages: dict[str, str], loads: int, chromium: str) -> dict[str, dict[str, Timing]]:
    from playwright.async_api import async_playwright

    server = uvicorn.Server(server_config(app, _config(Path("."))))  # type: ignore[arg-type]
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        base = f"http://127.0.0.1:{listening.getsockname()[1]}"
        serving = asyncio.create_task(server.serve(sockets=[listening]))
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                try:
                    context = await browser.new_context()
                    page = await context.new_page()
                    await page.goto(f"{base}/console/login")
                    await page.fill("#approver", "bench")
                    await page.fill("#token", TOKEN)
                    await page.click("button[type=submit]")
                    await page.wait_for_url(f"{base}/console/")
                    out: dict[str, dict[str, Timing]] = {}
                    for name, path in pages.items():
                        seen: dict[str, list[float]] = {"fp": [], "fcp": [], "response_end": []}
                        for _ in range(loads):
                            fresh = await context.new_page()  # a new document each time: paint entries are per load
                            await fresh.goto(base + path, wait_until="load")
                            # paint entries are added after the load event, at the next frame: wait (bounded)
                            await fresh.wait_for_function(PAINTED_JS, timeout=10_000)
                            found = await fresh.evaluate(PAINT_JS)
                            await fresh.close()
                            for key, value in found.items():
                                if value is None:
                                    raise RuntimeError(f"{path}: Chromium reported no {key}")
                                seen[key].append(float(value))
                        out[name] = {key: _timing(values) for key, values in seen.items()}
                finally:
                    await browser.close()
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, 10)
    return out


def _config(state_dir: Path) -> DriftConfig:
    return DriftConfig(state_dir=state_dir, private_key_path=state_dir / "k", trust_store_path=state_dir / "t",
                       argocd=ArgoCDConfig(url="http://127.0.0.1:1"), approvals_token=SecretStr(TOKEN),
                       webhook_token=SecretStr("bench-webhook-token"))


async def run(decisions: int, n: int, paints: int, chromium: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="driftwise-bench-console-") as folder:
        cfg = _config(Path(folder))
        async with EventStore(cfg.db_path) as store:
            filled = await fill(store, decisions)
            awaiting = await store.count_state(DecisionState.AWAITING_APPROVAL.value)
            print(f"store: {decisions} decisions ({awaiting} awaiting a human) recorded in {filled:.1f} s")

            async def accepted(_: Decision) -> None:
                return None

            app = create_app(cfg, store, DriftMetrics(), accepted)
            middle = _decision(decisions // 2 - (decisions // 2) % 5).event.event_id  # one awaiting a human
            pages = {"queue": "/console/", "queue fragment": "/console/queue", "recent": "/console/decisions",
                     "decision": f"/console/decisions/{middle}"}
            for name, t in (await server_times(app, pages, n)).items():
                print(f"server {name:15s} p50 {t.p50_ms:7.2f} ms  p99 {t.p99_ms:7.2f} ms  (n={n})")
            if chromium is None:
                print("paint: skipped (no chromium on PATH: apt-get install chromium)")
            else:
                browser_pages = {k: v for k, v in pages.items() if k != "queue fragment"}
                for name, found in (await paint_times(app, browser_pages, paints, chromium)).items():
                    print(f"paint  {name:15s} first paint p50 {found['fp'].p50_ms:6.1f} ms, first contentful "
                          f"paint p50 {found['fcp'].p50_ms:6.1f} ms p99 {found['fcp'].p99_ms:6.1f} ms, "
                          f"response end p50 {found['response_end'].p50_ms:6.1f} ms  (loads={paints})")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--decisions", type=int, default=5000)
    parser.add_argument("--n", type=int, default=200, help="requests per page for the server time")
    parser.add_argument("--paints", type=int, default=20, help="browser loads per page")
    args = parser.parse_args()
    calibration = signing.run()
    print(f"calibration: sign p50 {calibration['sign_p50_us']:.0f} us, "
          f"verify p50 {calibration['verify_p50_us']:.0f} us")
    asyncio.run(run(args.decisions, args.n, args.paints, shutil.which("chromium")))


if __name__ == "__main__":
    main()
