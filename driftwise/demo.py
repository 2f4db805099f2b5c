"""`driftwise demo`: the whole system on the sandbox, two drifts decided, each shown as a person reads it.

The drift (paths before -> after), the evidence the agents cited, what each agent said with its
signature checked against the trust store, the guardrail's reasons, the final action, confidence
and reasoning. Signatures are verified here, independently of the drift agent.
"""

from __future__ import annotations

import base64
import json
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftwise.explain import explain_final
from protocol.context import (
    Annotations,
    Autoscalers,
    Dashboards,
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
from protocol.errors import VerificationError
from protocol.models import Decision, Evidence, SignedRecommendation
from protocol.signing import TrustStore, Verifier

DEMO_SCENARIOS = ("v01-payments-emergency-scale-up", "v02-configmap-environment-tuning")
"""The Friday incident (a payments scale-up during a spike) and a ConfigMap tuned by hand."""


def default_scenarios_dir() -> Path:
    """The visible scenarios: the repository's scenarios/ next to the driftwise package (a source checkout or
    an editable install), else <prefix>/share/driftwise/scenarios (where a wheel installs them)."""
    candidates = [Path(__file__).resolve().parents[1] / "scenarios",
                  *(Path(p) / "share" / "driftwise" / "scenarios"
                    for p in dict.fromkeys((sysconfig.get_path("data"), sys.prefix)))]
    return next((p for p in candidates if p.is_dir()), candidates[0])


# --- signatures ----------------------------------------------------------------------------------


def _audience(token: str) -> str | None:
    try:
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, IndexError):
        return None
    aud = claims.get("aud")
    if isinstance(aud, list):
        return str(aud[0]) if aud else None
    return str(aud) if aud else None


def check_signature(trust: TrustStore, token: str, event_id: str, *, verdict: bool = False) -> str:
    """'verified (kid owner)' or 'NOT verified: reason'. The audience is taken from the token: we
    are an observer checking who signed what, not the party the token authorises."""
    audience = _audience(token)
    if audience is None:
        return "NOT verified: malformed token"
    verifier = Verifier(trust, audience=audience)
    try:
        if verdict:
            verifier.verify_verdict(token, event_id)
        else:
            verifier.verify_recommendation(token, event_id)
    except VerificationError as exc:
        return f"NOT verified: {exc}"
    return "verified"


# --- evidence, in words --------------------------------------------------------------------------


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def summarize_evidence(ev: Evidence) -> str:
    if ev.error is not None:
        return f"unavailable: {ev.error}"
    value = ev.value
    if isinstance(value, TrafficReport):
        change = f" (x{value.rate_change:.1f})" if value.rate_change is not None else ""
        return (f"{value.service}: {_num(value.request_rate)} req/s now vs {_num(value.baseline_request_rate)} "
                f"baseline{change}; 5xx {_num(value.error_ratio, '{:.1%}')}")
    if isinstance(value, MemoryReport):
        peaks = [p.max_bytes for p in value.pods if p.max_bytes is not None]
        if not peaks:
            return "no memory samples"
        return f"{len(value.pods)} pods, peak working set {max(peaks) / 2**20:.0f} MiB"
    if isinstance(value, Incidents):
        if not value.incidents:
            return f"no incidents for {value.service}"
        return "; ".join(f"{i.status} {i.urgency} '{i.title}'" for i in value.incidents[:3])
    if isinstance(value, IncidentDetail):
        return f"{value.incident.status} '{value.incident.title}'"
    if isinstance(value, Annotations):
        if not value.annotations:
            return "no annotations in the window"
        return "; ".join(f"'{a.text}'" for a in value.annotations[:3])
    if isinstance(value, KubeEvents):
        if not value.events:
            return "no events"
        return "; ".join(f"{e.reason} x{e.count}" for e in value.events[:4])
    if isinstance(value, Autoscalers):
        if not value.autoscalers:
            return "no autoscaler"
        return "; ".join(f"{a.kind} {a.name} {a.min_replicas}-{a.max_replicas} (wants {a.desired_replicas})"
                         for a in value.autoscalers)
    if isinstance(value, FieldManagers):
        return "; ".join(f"{m.manager} ({m.operation})" for m in value.managers) or "no managers"
    if isinstance(value, RbacReport):
        return f"{len(value.grants)} grants for {value.service_account}"
    if isinstance(value, NamespaceInfo):
        labels = ", ".join(f"{k}={v}" for k, v in value.labels.items())
        return f"namespace {value.name}: {labels or 'no labels'}"
    if isinstance(value, KubeObject):
        return "found" if value.found else "not found"
    if isinstance(value, QueryResult):
        return f"{len(value.series)} series"
    if isinstance(value, Dashboards):
        return ", ".join(d.title for d in value.dashboards) or "no dashboards"
    return str(value)[:120]


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, separators=(",", ":")) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- one decision ---------------------------------------------------------------------------------


@dataclass
class Shown:
    scenario: str
    event_id: str
    action: str
    latency_ms: float
    summary: str


def render_decision(console: Any, title: str, decision: Decision, trust: TrustStore, latency_ms: float) -> str:
    """Print one decision; returns its one-line summary: the final action (a verdict needing a human reads
    `escalate`) and why, naming what overruled the drift agent's proposal."""
    from rich.panel import Panel
    from rich.table import Table

    from driftwise.evaluation import final_action

    event_id = decision.event.event_id
    console.rule(f"[bold]{title}[/]")
    note = decision.event.notification
    console.print(f"Argo CD says [bold]{note.app}[/] (project {note.project}) is {note.sync_status}; "
                  f"event {event_id}, decided in {latency_ms:.0f} ms, state {decision.state.value}")

    drift = Table(title="the drift (Git -> cluster)", title_justify="left", expand=False)
    drift.add_column("resource", overflow="fold")
    drift.add_column("path", overflow="fold")
    drift.add_column("before")
    drift.add_column("after")
    drift.add_column("changed by")
    for rd in decision.report.drifts if decision.report else []:
        who = ", ".join(rd.changed_by) or "-"
        for ch in rd.changes:
            before = "<redacted>" if ch.redacted else _short(ch.before, 30)
            after = "<redacted>" if ch.redacted else _short(ch.after, 30)
            drift.add_row(f"{rd.ref.kind}/{rd.ref.name}", ch.path, before, after, who)
    console.print(drift)

    signed: list[SignedRecommendation] = [*decision.recommendations]
    if decision.proposal is not None:
        signed.append(decision.proposal)
    cited = {ref for s in signed for ref in s.recommendation.evidence_refs}
    evidence = [e for e in decision.evidence if e.id in cited] or decision.evidence
    ev_table = Table(title="the evidence that mattered" if cited else "the evidence gathered", title_justify="left")
    ev_table.add_column("from", no_wrap=True)
    ev_table.add_column("what it showed", overflow="fold")
    for ev in evidence:
        ev_table.add_row(f"{ev.source}.{ev.tool}", summarize_evidence(ev))
    console.print(ev_table)

    console.print("[bold]what each agent said[/]")
    for s in signed:
        rec = s.recommendation
        says = rec.action.value if rec.action is not None else "abstains"
        sig = check_signature(trust, s.jws, event_id)
        mark = "[green]signature verified[/]" if sig == "verified" else f"[red]signature {sig}[/]"
        console.print(f"  [bold]{rec.agent}[/] ({rec.domain.value}): [bold]{says}[/], confidence "
                      f"{rec.confidence:.2f} — {mark}")
        if s is not decision.proposal:  # the proposal's reasoning is shown in full below
            console.print(f"      {_short(' '.join(rec.reasoning.split()), 220)}", highlight=False)

    got = final_action(decision)
    if decision.verdict is not None:
        verdict = decision.verdict.verdict
        sig = check_signature(trust, decision.verdict.jws, event_id, verdict=True)
        lines = [f"- {r.code}: {r.message}" for r in verdict.reasons] or ["- no clamp: the proposal stands"]
        lines += [f"- discarded {d.agent}: {d.reason} {d.detail}".rstrip() for d in verdict.discarded]
        human = "a human must approve" if verdict.requires_approval else "no approval needed"
        console.print(Panel("\n".join(lines), title=f"guardrail (threshold {verdict.threshold:.2f}; {human}; "
                                                     f"verdict signature {sig})", expand=False))
        confidence = verdict.confidence
    else:
        confidence = decision.proposal.recommendation.confidence if decision.proposal else 0.0
        console.print(Panel(decision.error or "no verdict", title="guardrail", expand=False))
    explained = explain_final(decision)
    applied = ", ".join(f"{a.kind}{'' if a.executed else ' (not executed)'}" for a in decision.applied) or "nothing"
    action = got.value if got is not None else "none"
    console.print(Panel(f"{explained.text()}\n\napplied: {applied}",
                        title=f"final action: [bold]{action}[/]  confidence {confidence:.2f}  "
                              f"({decision.mode} mode)", expand=False))
    if decision.backport_patch:
        console.print(Panel(decision.backport_patch.rstrip(), title="Git back-port for a human to merge",
                            expand=False))
    return explained.summary


async def run_demo(
    settings: Any,
    *,
    scenarios_dir: Path,
    scenario_ids: list[str],
    console: Any,
    config_file: Path | None = None,
    sandbox_args: list[str] | None = None,
    ports_picked: bool = False,
) -> list[Shown]:
    """Start everything (sandbox included), decide each scenario's drift, show it, stop everything."""
    import httpx

    from driftwise.evaluation import Endpoints, EvalError, SystemClient, final_action, running_system

    shown: list[Shown] = []
    started = time.perf_counter()
    async with running_system(settings, sandbox_paths=[scenarios_dir], console=console, config_file=config_file,
                              sandbox_args=sandbox_args, move_ports_on_conflict=ports_picked) as system:
        supervisor, settings = system.supervisor, system.settings
        console.print(f"{len(supervisor.children)} processes ready in {time.perf_counter() - started:.1f}s: "
                      + ", ".join(f"{c['name']} :{(c['url'] or '').split(':')[-1].split('/')[0]}"
                                  for c in supervisor.status()))
        trust = TrustStore.load(settings.trust_store_path)
        async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
            client = SystemClient(http, Endpoints.from_settings(settings))
            listing = {s["id"]: s for s in (await client.scenarios())["scenarios"]}
            for sid in scenario_ids:
                if sid not in listing:
                    raise EvalError(f"scenario {sid!r} is not in {scenarios_dir} (known: {', '.join(listing)})")
                activated = await client.activate(sid)
                notification = activated["applications"][0]["notification"]
                t0 = time.perf_counter()
                ack = await client.notify(notification)
                decision = await client.wait_final(ack.event_id, settings.drift.decision_deadline_s * 2 + 10)
                latency = (time.perf_counter() - t0) * 1000
                summary = render_decision(console, listing[sid].get("title", sid), decision, trust, latency)
                action = final_action(decision)
                shown.append(Shown(sid, ack.event_id, action.value if action else "none", latency, summary))
    return shown
