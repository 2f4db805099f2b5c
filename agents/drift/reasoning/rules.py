"""The rules reasoner: the decision rubric, deterministic and offline (the default reasoner).

It implements scenarios/README.md "How the labels were decided" — the first rule that applies
decides — from what the APIs returned, for any workload kind, metric level or object name:

1. privilege or exposure widened (own check, or a specialist's security/compliance enforce) -> enforce
   (a specialist's security/compliance escalate is respected; an unreachable security specialist on a
   security-relevant drift -> escalate)
2. a Secret value changed -> escalate
3. a regulated namespace during a change freeze -> escalate
4. an operational change live evidence justifies (load spike, open incident, OOM, an autoscaler owns
   the field) -> allow
5. capacity or resilience lowered with no evidence behind it -> enforce
6. a benign configuration change, no incident -> defer (to the next allow window)
7. the evidence the decision hinges on cannot be had -> escalate
8. free text in drifted objects and evidence is never read as instruction (nothing here reads it)
Then the sync windows: an enforce they refuse now becomes escalate.

Confidence is calibrated to the evidence: clear evidence (several signals agreeing, or a
deterministic finding) scores well above the default 0.80 threshold; a single weak or ambiguous
signal scores below it, so that a human decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agents.drift.evidence_plan import change_time, service_names, workload
from agents.drift.reasoning.base import ReasoningInput, ReasoningOutput
from agents.drift.reasoning.changes import ResourceChanges, classify
from agents.drift.reasoning.evidence_view import EvidenceView
from agents.drift.reasoning.security import is_security_relevant, trusted_registries, widening_findings
from agents.kit.knowledge import Packs, default_packs, unclassified_finding
from agents.kit.workloads import container_map, dig, namespace_labels, pod_spec, quantity
from protocol.models import (
    Action,
    Domain,
    DriftReport,
    Finding,
    FindingKind,
    Recommendation,
    ResourcePaths,
    Scope,
    Severity,
)
from protocol.syncwindows import in_freeze, matches, next_allow_start, sync_allowed

__all__ = ["COMPLIANCE_LABEL", "RulesConfig", "RulesReasoner", "decide", "finish"]

COMPLIANCE_LABEL = "driftwise.io/compliance"
AUTOSCALER_MANAGERS = ("horizontal-pod-autoscaler", "kube-controller-manager", "keda", "vpa", "autoscaler")


@dataclass(frozen=True)
class RulesConfig:
    """The rubric's thresholds; the defaults are the project's calibration."""

    spike_ratio: float = 1.5
    """request rate now / baseline at or above this is a load spike"""
    drop_ratio: float = 0.5
    """at or below this, load fell (a possible reason for a scale-down — a human confirms)"""
    error_spike_ratio: float = 0.05
    """a 5xx share at or above this (and 3x the baseline) is an error spike"""
    memory_pressure: float = 0.9
    """working set at or above this share of Git's memory limit is memory pressure"""
    packs: Packs | None = None
    """what custom resources' fields mean (None: the packs shipped in agents/kit/packs)"""


@dataclass
class _Opinion:
    action: Action
    confidence: float
    lines: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    domain: Domain = Domain.OPERATIONAL


class RulesReasoner:
    """Deterministic rubric; `reason` never raises for bad evidence (missing evidence is a rule)."""

    name = "rules"

    def __init__(self, config: RulesConfig | None = None) -> None:
        self.config = config or RulesConfig()

    async def start(self) -> None:
        """Nothing to start: the rules need no endpoint."""

    async def aclose(self) -> None:
        """Nothing to close."""

    async def reason(self, inp: ReasoningInput) -> ReasoningOutput:
        return ReasoningOutput(recommendation=decide(inp, self.config))


def decide(inp: ReasoningInput, config: RulesConfig | None = None) -> Recommendation:
    """The rubric applied to one drift event (pure: same input, same answer)."""
    config = config or RulesConfig()
    report = inp.report
    packs = config.packs or default_packs()
    changes = [classify(d, packs) for d in report.drifts]
    opinion = (
        _security(inp, packs)
        or _secrets(changes)
        or _freeze(inp)
        or _unknown(inp, changes)
        or _operational(inp, config, changes)
    )
    opinion = _windows(opinion, report, inp.now)
    return _recommendation(inp, opinion)


def finish(inp: ReasoningInput, action: Action, confidence: float, reasoning: str, *, refs: list[str],
           findings: list[Finding], domain: Domain) -> Recommendation:
    """Any reasoner's answer made whole the same way: sync windows applied, allow/defer scoped, refs cited."""
    opinion = _Opinion(action, confidence, [reasoning], list(refs), list(findings), domain)
    return _recommendation(inp, _windows(opinion, inp.report, inp.now))


# --- rule 1: privilege and exposure ------------------------------------------------------------------


def _decisive(f: Finding) -> bool:
    return f.kind == FindingKind.WIDENED and f.severity in (Severity.HIGH, Severity.CRITICAL)


def _only_unclassified(r: Recommendation) -> bool:
    kinds = {f.kind for f in r.findings} - {FindingKind.NOTE, FindingKind.STRENGTHENED}
    return kinds == {FindingKind.UNCLASSIFIED}


def _security(inp: ReasoningInput, packs: Packs) -> _Opinion | None:
    report = inp.report
    trusted = trusted_registries(report.drifts)
    own = [f for d in report.drifts for f in widening_findings(d, trusted, packs)]
    specialist_recs = [r for r in inp.specialists if r.kind == "recommendation" and r.domain != Domain.OPERATIONAL]
    # A specialist's typed answer counts: its action, or a decisive widening among its findings.
    enforcers = [r for r in inp.specialists
                 if (r in specialist_recs and r.action == Action.ENFORCE) or any(_decisive(f) for f in r.findings)]
    # An escalation that stands only on unclassified findings is rule 7's, decided (and explained) below.
    escalators = [r for r in specialist_recs if r.action == Action.ESCALATE and r not in enforcers
                  and not _only_unclassified(r)]
    if own or enforcers:
        strong = any(f.severity in (Severity.HIGH, Severity.CRITICAL) for f in own)
        confidence = 0.97 if own and enforcers else (0.94 if strong else 0.88) if own else 0.9
        lines = ["Rule 1 (privilege/exposure widened -> enforce now)."]
        lines += [f"Own check: {_where(f)} {f.message} [{f.rule_id}]." for f in own]
        for r in enforcers:
            said = r.action.value if r.action else "abstain"
            lines.append(f"Specialist {r.agent} ({r.domain.value}) says {said} (confidence {r.confidence:.2f}); "
                         f"widening findings: {', '.join(f.rule_id for f in r.findings if _decisive(f)) or 'none'}.")
        for r in escalators:
            lines.append(f"Specialist {r.agent} ({r.domain.value}) asks for escalation; rule 1 reverts first.")
        domain = enforcers[0].domain if enforcers else Domain.OPERATIONAL
        findings = own + [f for r in enforcers for f in r.findings]
        domain = Domain.SECURITY if any(f.domain == Domain.SECURITY for f in findings) else domain
        refs = [ref for r in enforcers for ref in r.evidence_refs]
        return _Opinion(Action.ENFORCE, confidence, lines, refs, findings, domain)
    if escalators:
        lines = ["Rule 1 (specialist escalation respected)."]
        lines += [f"Specialist {r.agent} ({r.domain.value}) recommends escalate: {_short(r.reasoning)}"
                  for r in escalators]
        return _Opinion(Action.ESCALATE, 0.9, lines, [ref for r in escalators for ref in r.evidence_refs],
                        [f for r in escalators for f in r.findings], escalators[0].domain)
    # Which domain an unreachable specialist covers is unknown here: any of them leaves the security view open.
    missing = list(inp.unreachable_specialists)
    relevant = [d for d in report.drifts if is_security_relevant(d)]
    if missing and relevant:
        paths = ", ".join(f"{d.ref.kind} {d.ref.namespace or '-'}/{d.ref.name} {c.path}"
                          for d in relevant for c in d.changes[:3])
        return _Opinion(Action.ESCALATE, 0.85, [
            f"Rule 7 (evidence cannot be had): specialist(s) {', '.join(missing)} unreachable while the drift touches "
            f"security-relevant fields ({paths}); the own check found no widening, but a human must confirm."])
    return None


# --- rule 2: Secret values ------------------------------------------------------------------------


def _secrets(changes: list[ResourceChanges]) -> _Opinion | None:
    changed = [(rc.drift, c) for rc in changes for c in rc.secret_values]
    if not changed:
        return None
    fields = ", ".join(f"Secret {d.ref.namespace or '-'}/{d.ref.name} {path}" for d, path in changed)
    findings = [Finding(rule_id="secret.value_changed", domain=Domain.SECURITY, kind=FindingKind.SECRET_VALUE,
                        severity=Severity.HIGH, resource=d.ref, path=path,
                        message="Secret value differs from Git (redacted: rotation or compromise cannot be told)")
                for d, path in changed]
    return _Opinion(Action.ESCALATE, 0.95, [
        f"Rule 2 (a Secret value changed -> escalate): {fields}. The values are redacted, so whether this is a "
        "rotation or a compromise cannot be judged here; a human decides."], findings=findings)


# --- rule 3: regulated scope during a freeze -----------------------------------------------------


def _namespaces(report: DriftReport) -> list[str]:
    names = [d.ref.namespace for d in report.drifts if d.ref.namespace]
    if report.destination_namespace:
        names.append(report.destination_namespace)
    return list(dict.fromkeys(names))


def _regime(inp: ReasoningInput, view: EvidenceView, namespace: str) -> tuple[str | None, list[str], str | None]:
    """(regime or None, evidence ids, why the labels cannot be read — None when they could)."""
    reported = namespace_labels(inp.report, namespace)
    known = reported is not None
    labels = reported or {}
    refs: list[str] = []
    got = view.namespace(namespace)
    if got.value is not None:
        labels.update(got.value.labels)
        refs += list(got.ids)
        known = True
    elif got.failed:
        refs += list(got.ids)
    regime = labels.get(COMPLIANCE_LABEL)
    unreadable = None if known or not got.failed else "; ".join(got.errors)
    return (regime or None), refs, unreadable


def _freeze(inp: ReasoningInput) -> _Opinion | None:
    report, view = inp.report, EvidenceView(inp.evidence)
    regulated: list[tuple[str, str]] = []
    unreadable: list[tuple[str, str]] = []
    refs: list[str] = []
    for ns in _namespaces(report):
        regime, ns_refs, error = _regime(inp, view, ns)
        refs += ns_refs
        if regime:
            regulated.append((ns, regime))
        elif error is not None:
            unreadable.append((ns, error))
    # Rule 3 hinges on the namespace's labels only while a freeze holds: then unreadable labels are rule 7.
    blind = [(ns, error) for ns, error in unreadable
             if in_freeze(report.sync_windows, inp.now, report.application, ns, report.destination_server)]
    if blind and not any(in_freeze(report.sync_windows, inp.now, report.application, ns, report.destination_server)
                         for ns, _ in regulated):
        where = "; ".join(f"namespace {ns} ({error})" for ns, error in blind)
        return _Opinion(Action.ESCALATE, 0.85, [
            f"Rule 7 (the evidence the decision hinges on cannot be had -> escalate): a change freeze (deny window) "
            f"is active at {inp.now.isoformat()}, and whether the drift is in a regulated scope (rule 3) cannot be "
            f"read: {where}."], refs=refs)
    if not regulated:
        return None
    frozen = [(ns, regime) for ns, regime in regulated
              if in_freeze(report.sync_windows, inp.now, report.application, ns, report.destination_server)]
    if frozen:
        denies = [w for w in report.sync_windows
                  if w.kind == "deny" and matches(w, report.application, frozen[0][0], report.destination_server)]
        where = ", ".join(f"namespace {ns} ({COMPLIANCE_LABEL}={regime})" for ns, regime in frozen)
        window = "; ".join(f"deny window '{w.schedule}' for {w.duration}" for w in denies)
        return _Opinion(Action.ESCALATE, 0.95, [
            f"Rule 3 (regulated scope during a change freeze -> escalate): {where} is regulated and the project's "
            f"{window} is active at {inp.now.isoformat()}. No automated change either way; change management decides."],
            refs=refs, findings=[Finding(rule_id="compliance.freeze", domain=Domain.COMPLIANCE, kind=FindingKind.FREEZE,
                                         severity=Severity.HIGH, message=f"change freeze over regulated {where}")])
    missing = list(inp.unreachable_specialists)
    if missing:
        where = ", ".join(f"{ns} ({regime})" for ns, regime in regulated)
        return _Opinion(Action.ESCALATE, 0.85, [
            f"Rule 7 (evidence cannot be had): the drift is in regulated namespace(s) {where} and specialist(s) "
            f"{', '.join(missing)} could not be reached; a human checks the compliance side."], refs=refs)
    return None


# --- rule 6's "no security meaning must be known": unclassified is rule 7 --------------------------


def _unknown(inp: ReasoningInput, changes: list[ResourceChanges]) -> _Opinion | None:
    """Escalate a drift whose meaning no pack establishes: ours, or a specialist's unclassified finding."""
    own = [unclassified_finding(rc.drift.ref, rc.unclassified, Domain.OPERATIONAL) for rc in changes if rc.unclassified]
    theirs = [f for r in inp.specialists for f in r.findings if f.kind == FindingKind.UNCLASSIFIED]
    if not own and not theirs:
        return None
    lines = ["Rule 7 (meaning cannot be established -> escalate; unknown is never benign, rule 6)."]
    lines += [f"Own check: {f.message}." for f in own]
    lines += [f"Specialist {r.agent}: {f.message}." for r in inp.specialists for f in r.findings
              if f.kind == FindingKind.UNCLASSIFIED]
    return _Opinion(Action.ESCALATE, 0.9, lines, findings=own + theirs)


# --- rules 4-7: operational ----------------------------------------------------------------------


def _operational(inp: ReasoningInput, config: RulesConfig, changes: list[ResourceChanges]) -> _Opinion:
    view = EvidenceView(inp.evidence)
    opinions = [_assess(inp, view, rc, config) for rc in changes if rc.deltas or rc.config_paths]
    if not opinions:
        return _Opinion(Action.ESCALATE, 0.5, [
            "No changed field could be read from the drift report (Argo CD reports the application OutOfSync "
            "without a readable difference); a human looks at it."])
    return _combine(opinions)


def _combine(opinions: list[_Opinion]) -> _Opinion:
    actions = {o.action for o in opinions}
    merged = _Opinion(Action.DEFER, min(o.confidence for o in opinions))
    for o in opinions:
        merged.lines += o.lines
        merged.refs += o.refs
        merged.findings += o.findings
    if Action.ESCALATE in actions:
        merged.action = Action.ESCALATE
        merged.confidence = max(o.confidence for o in opinions if o.action == Action.ESCALATE)
    elif Action.ENFORCE in actions and Action.ALLOW in actions:
        merged.action = Action.ESCALATE
        merged.confidence = 0.8
        merged.lines.append("Parts of this drift are justified and parts are not: a human splits it.")
    elif Action.ENFORCE in actions:
        merged.action = Action.ENFORCE
        merged.confidence = min(o.confidence for o in opinions if o.action == Action.ENFORCE)
    elif Action.ALLOW in actions:
        merged.action = Action.ALLOW
    return merged


def _where(f: Finding) -> str:
    if f.resource is None:
        return ""
    return f"{f.resource.kind} {f.resource.namespace or '-'}/{f.resource.name} {f.path or ''}".rstrip()


def _short(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class _Signals:
    """What live evidence says about one resource's change."""

    strong: list[str] = field(default_factory=list)  # justifications that stand on their own
    weak: list[str] = field(default_factory=list)  # possible justifications a human should confirm
    against: list[str] = field(default_factory=list)  # evidence that the change hurts
    context: list[str] = field(default_factory=list)  # neutral facts worth citing
    missing: list[str] = field(default_factory=list)  # hinge evidence that failed
    refs: list[str] = field(default_factory=list)
    rate_change: float | None = None
    traffic_known: bool = False
    error_spike: str | None = None  # 5xx share far above baseline: justifies more capacity, condemns less
    spike: str | None = None  # request rate far above baseline (also in `strong`)
    fell: str | None = None  # request rate far below baseline (also in `weak`)
    owner: str | None = None  # an autoscaler owns the replicas and live is within its bounds (also in `strong`)


def _assess(inp: ReasoningInput, view: EvidenceView, rc: ResourceChanges, config: RulesConfig) -> _Opinion:
    drift = rc.drift
    ref = drift.ref
    ns = ref.namespace or inp.report.destination_namespace
    label = f"{ref.kind} {ns or '-'}/{ref.name}"
    what = "; ".join(d.describe() for d in rc.deltas) or ", ".join(rc.config_paths)
    who = f" (written by {', '.join(drift.changed_by)}" + (
        f" at {drift.changed_at.isoformat()})" if drift.changed_at else ")") if drift.changed_by else ""
    head = f"{label}: {what}{who}."
    sig = _Signals()
    changed_at = change_time(drift, inp.now)

    incidents = view.incidents(service_names(inp.report, drift))
    sig.refs += list(incidents.ids)
    if incidents.failed:
        sig.missing.append(f"incidents ({'; '.join(incidents.errors)})")
    open_incidents = incidents.value or []
    before = [i for i in open_incidents if i.created_at <= changed_at]
    after = [i for i in open_incidents if i not in before]

    def cite(ids: tuple[str, ...]) -> str:
        return f"[{', '.join(ids)}]" if ids else ""

    findings = [Finding(rule_id="operational.change", domain=Domain.OPERATIONAL, kind=FindingKind.NOTE,
                        severity=Severity.INFO, resource=ref, path=d.path, message=d.describe()) for d in rc.deltas]

    if not rc.deltas:
        # Configuration only (rule 4 with an incident, else rule 6; rule 7 when incidents cannot be read).
        if open_incidents:
            titles = "; ".join(f"{i.id} {i.status} since {i.created_at.isoformat()}" for i in open_incidents)
            return _Opinion(Action.ALLOW, 0.82, [
                f"{head} Rule 4 (an incident is open on the service -> allow): {titles} {cite(incidents.ids)}; "
                "a change made during it is kept until the incident is over."], sig.refs, findings)
        if sig.missing:
            return _Opinion(Action.ESCALATE, 0.8, [
                f"{head} Rule 7: whether an incident explains this configuration change cannot be read: "
                f"{'; '.join(sig.missing)}."], sig.refs, findings)
        return _Opinion(Action.DEFER, 0.88, [
            f"{head} Rule 6 (benign configuration, no security meaning, no open incident "
            f"{cite(incidents.ids) or '(none asked)'} -> defer to the next allow window)."], sig.refs, findings)

    ups, downs = rc.up, rc.down
    if open_incidents:
        for i in before:
            (sig.strong if not downs else sig.weak).append(
                f"incident {i.id} ({i.status}, {i.urgency or 'n/a'} urgency) open since {i.created_at.isoformat()}, "
                f"before the change {cite(incidents.ids)}")
        for i in after:
            (sig.against if downs else sig.strong).append(
                f"incident {i.id} ({i.status}) opened {i.created_at.isoformat()}, after the change "
                f"{cite(incidents.ids)}")

    owner = workload(drift)
    _traffic(view, ns, owner[1] if owner else ref.name, config, sig)
    if rc.replicas_changed:
        _autoscalers(view, ns, rc, sig)
    if any(d.what == "memory" for d in rc.deltas) or ups:
        _memory(view, ns, rc, config, sig)

    if downs:
        return _assess_down(head, rc, sig, findings, config)
    return _assess_up(head, sig, findings)


def _traffic(view: EvidenceView, ns: str, name: str, config: RulesConfig, sig: _Signals) -> None:
    got = view.traffic(ns, name)
    sig.refs += list(got.ids)
    t = got.value
    if t is None:
        if got.asked:
            sig.missing.append(f"traffic ({'; '.join(got.errors)})")
        return
    ratio = t.rate_change
    if ratio is None and t.request_rate is not None and t.baseline_request_rate is not None:
        ratio = (t.request_rate / t.baseline_request_rate) if t.baseline_request_rate > 0 else (
            float("inf") if t.request_rate > 0 else 1.0)
    if ratio is None:
        sig.missing.append(f"traffic [{got.ids[0]}] holds no request rate for service {name}")
        return
    sig.traffic_known = True
    sig.rate_change = ratio
    desc = (f"request rate {t.request_rate:.4g}/s vs baseline {t.baseline_request_rate:.4g}/s "
            f"(x{ratio:.2f}, baseline {t.baseline_start.isoformat()}..{t.baseline_end.isoformat()}) [{got.ids[0]}]"
            if t.request_rate is not None and t.baseline_request_rate is not None
            else f"request rate x{ratio:.2f} of baseline [{got.ids[0]}]")
    if ratio >= config.spike_ratio:
        sig.spike = f"load spike: {desc}"
        sig.strong.append(sig.spike)
    elif ratio <= config.drop_ratio:
        sig.fell = f"load fell: {desc}"
        sig.weak.append(sig.fell)
    else:
        sig.context.append(f"traffic steady: {desc}")
    er, ber = t.error_ratio, t.baseline_error_ratio
    if er is not None and er >= config.error_spike_ratio and (ber is None or er >= 3 * max(ber, 1e-9)):
        sig.error_spike = f"5xx share {er:.1%} (baseline {ber if ber is None else f'{ber:.1%}'}) [{got.ids[0]}]"
        sig.strong.append(sig.error_spike)


def _autoscalers(view: EvidenceView, ns: str, rc: ResourceChanges, sig: _Signals) -> None:
    ref = rc.drift.ref
    got = view.autoscalers(ns, ref.kind, ref.name)
    sig.refs += list(got.ids)
    live = dig(rc.drift.live, "spec", "replicas")
    controller_writer = [m for m in rc.drift.changed_by if any(k in m.lower() for k in AUTOSCALER_MANAGERS)]
    if got.value is None:
        if got.asked:
            sig.missing.append(f"autoscalers ({'; '.join(got.errors)})")
        if controller_writer:
            sig.weak.append(f"/spec/replicas written by {', '.join(controller_writer)} (a controller), but whether an "
                            "autoscaler targets the workload could not be read")
        return
    for a in got.value.autoscalers:
        low = a.min_replicas if a.min_replicas is not None else 1
        high = a.max_replicas if a.max_replicas is not None else 10**9
        bounds = f"min {a.min_replicas}, max {a.max_replicas}, desired {a.desired_replicas}"
        if isinstance(live, int) and low <= live <= high:
            sig.owner = (f"/spec/replicas is owned by {a.kind} {a.name} ({bounds}); live {live} is within its "
                         f"bounds [{got.ids[0]}]")
            sig.strong.append(sig.owner)
            return
        sig.context.append(f"{a.kind} {a.name} exists ({bounds}) but live replicas {live} are outside its bounds "
                           f"[{got.ids[0]}]")
    if not got.value.autoscalers:
        sig.context.append(f"no autoscaler targets the workload [{got.ids[0]}]")
        if controller_writer:
            sig.context.append(f"/spec/replicas was written by {', '.join(controller_writer)} yet no autoscaler exists")


def _memory(view: EvidenceView, ns: str, rc: ResourceChanges, config: RulesConfig, sig: _Signals) -> None:
    ref = rc.drift.ref
    ev = view.events(ns, ref.kind, ref.name)
    sig.refs += list(ev.ids)
    oom_events = [e for e in (ev.value.events if ev.value else []) if "oom" in e.reason.lower()]
    mem = view.memory(ns, ref.name)
    sig.refs += list(mem.ids)
    if oom_events:
        total = sum(e.count for e in oom_events)
        sig.strong.append(f"OOM kills: {total} event(s) {sorted({e.reason for e in oom_events})} on "
                          f"{len({e.involved_name for e in oom_events})} object(s) [{ev.ids[0]}]")
    old_limits = _memory_limits(rc.drift.target)
    if mem.value is not None and old_limits:
        limit = min(old_limits)
        peak = max((p.max_bytes or 0.0) for p in mem.value.pods) if mem.value.pods else 0.0
        last = max((p.last_bytes or 0.0) for p in mem.value.pods) if mem.value.pods else 0.0
        if peak >= config.memory_pressure * limit:
            sig.strong.append(f"memory working set peaks at {peak / 2**20:.0f}Mi (now {last / 2**20:.0f}Mi) against "
                              f"Git's limit {limit / 2**20:.0f}Mi [{mem.ids[0]}]")
        elif mem.value.pods:
            sig.context.append(f"memory peaks at {peak / 2**20:.0f}Mi, well under Git's limit "
                               f"{limit / 2**20:.0f}Mi [{mem.ids[0]}]")
    if rc.memory_raised and not oom_events and (mem.failed or (mem.asked and mem.value is None)) and ev.failed:
        sig.missing.append(f"memory and events ({'; '.join(mem.errors + ev.errors)})")


def _memory_limits(obj: dict | None) -> list[float]:
    out = []
    for _, (_, c) in container_map(pod_spec(obj)).items():
        q = quantity(dig(c, "resources", "limits", "memory"))
        if q:
            out.append(q)
    return out


def _confidence(strong: int, base: float = 0.85) -> float:
    return min(0.97, base + 0.05 * max(0, strong - 1))


def _assess_up(head: str, sig: _Signals, findings: list[Finding]) -> _Opinion:
    facts = sig.context
    if sig.strong:
        return _Opinion(Action.ALLOW, _confidence(len(sig.strong)), [
            f"{head} Rule 4 (capacity raised, live evidence justifies it -> allow): " + "; ".join(sig.strong)
            + ("; " + "; ".join(facts) if facts else "") + "."], sig.refs, findings)
    if sig.missing:
        return _Opinion(Action.ESCALATE, 0.85, [
            f"{head} Rule 7 (the evidence the decision hinges on cannot be had -> escalate): "
            + "; ".join(sig.missing) + ("; " + "; ".join(facts) if facts else "")
            + ". Whether the raise is justified depends on it."], sig.refs, findings)
    if sig.weak:
        return _Opinion(Action.ALLOW, 0.65, [
            f"{head} Rule 4, weakly: " + "; ".join(sig.weak) + ". A human confirms."], sig.refs, findings)
    return _Opinion(Action.DEFER, 0.82, [
        f"{head} Rule 6 (capacity raised with no load spike, incident, OOM or autoscaler behind it, nothing lowered "
        "-> defer to the next allow window): " + ("; ".join(facts) or "no live signal") + "."], sig.refs, findings)


def _load_follows(rc: ResourceChanges, sig: _Signals, config: RulesConfig) -> str | None:
    """Why a replica cut is justified by the load, or None: the load fell at least as much as the replicas did.

    Only replica counts qualify (a smaller limit is not answered by less traffic), only when traffic fell
    well below the baseline taken before the change, nothing else speaks for the cut or against it, and
    each remaining replica carries no more than each replica did at the baseline.
    """
    if not rc.down or any(d.what != "replicas" for d in rc.down) or rc.up:
        return None
    if not sig.traffic_known or sig.rate_change is None or sig.against or sig.missing or sig.error_spike:
        return None
    cut = rc.down[0]
    if not isinstance(cut.before, int) or not isinstance(cut.after, int) or cut.before <= 0:
        return None
    share = cut.after / cut.before
    if sig.rate_change > config.drop_ratio or sig.rate_change > share:
        return None
    fell = sig.fell or f"request rate x{sig.rate_change:.2f}"
    return (f"{fell}; replicas cut to {share:.0%} of Git's ({cut.before} -> {cut.after}) while the load is "
            f"{sig.rate_change:.0%} of its baseline, so each replica carries no more than before")


def _assess_down(head: str, rc: ResourceChanges, sig: _Signals, findings: list[Finding],
                 config: RulesConfig) -> _Opinion:
    facts = sig.context
    owned = [sig.owner] if sig.owner else []
    only_replicas = all(d.what == "replicas" for d in rc.down)
    if owned and only_replicas:
        return _Opinion(Action.ALLOW, 0.9, [
            f"{head} Rule 4 (the field belongs to a controller -> allow): " + "; ".join(owned) + "."],
            sig.refs, findings)
    if sig.error_spike:
        # Errors far above the baseline taken before the cut: the service is failing with less capacity.
        sig.against.append(f"the service is failing: {sig.error_spike}")
    if sig.against:
        return _Opinion(Action.ENFORCE, 0.9, [
            f"{head} Rule 5 (capacity/resilience lowered and the service degraded after it -> enforce): "
            + "; ".join(sig.against) + ("; " + "; ".join(facts) if facts else "") + "."], sig.refs, findings)
    if sig.missing:
        return _Opinion(Action.ESCALATE, 0.85, [
            f"{head} Rule 7 (the evidence the decision hinges on cannot be had -> escalate): "
            + "; ".join(sig.missing) + ". Whether the cut is explained depends on it."], sig.refs, findings)
    follows = _load_follows(rc, sig, config)
    if follows:
        return _Opinion(Action.ALLOW, 0.85, [
            f"{head} Rule 4 (an operational change live evidence justifies -> allow): {follows}"
            + ("; " + "; ".join(facts) if facts else "") + "."], sig.refs, findings)
    reasons = [s for s in sig.strong if s not in (sig.owner, sig.spike)] + sig.weak
    if reasons:
        return _Opinion(Action.ALLOW, 0.65, [
            f"{head} Capacity/resilience lowered; possible reasons: " + "; ".join(reasons)
            + ". They may explain the cut but do not prove it: a human confirms."], sig.refs, findings)
    return _Opinion(Action.ENFORCE, 0.92 if sig.traffic_known else 0.85, [
        f"{head} Rule 5 (capacity/resilience lowered with no evidence behind it -> enforce): "
        + ("; ".join(facts + ([sig.spike] if sig.spike else [])) or "no live signal")
        + "; no open incident, no autoscaler owning it."], sig.refs, findings)


# --- sync windows, scope, output --------------------------------------------------------------


def _windows(opinion: _Opinion, report: DriftReport, now: datetime) -> _Opinion:
    app, ns, cluster = report.application, report.destination_namespace, report.destination_server
    if opinion.action == Action.ENFORCE and not sync_allowed(report.sync_windows, now, app, ns, cluster, manual=True):
        opinion.lines.append("The project's sync windows refuse a sync now (a deny window without manualSync): "
                             "the revert cannot happen, so a human decides.")
        opinion.action = Action.ESCALATE
    return opinion


def _scope(inp: ReasoningInput, action: Action) -> Scope | None:
    if action not in (Action.ALLOW, Action.DEFER):
        return None
    report = inp.report
    resources = [ResourcePaths(ref=d.ref, paths=list(dict.fromkeys(c.path for c in d.changes)))
                 for d in report.drifts if d.changes]
    if not resources:
        return None
    if action == Action.ALLOW:
        return Scope(resources=resources, until=inp.now + timedelta(hours=inp.allow_ttl_h))
    start = next_allow_start(report.sync_windows, inp.now, report.application, report.destination_namespace,
                             report.destination_server)
    return Scope(resources=resources, not_before=start or inp.now)


def _recommendation(inp: ReasoningInput, op: _Opinion) -> Recommendation:
    scope = _scope(inp, op.action)
    if op.action in (Action.ALLOW, Action.DEFER) and scope is None:
        op.action, op.confidence = Action.ESCALATE, min(op.confidence, 0.6)
        op.lines.append("No changed path to scope an allow/defer to: a human decides.")
    if op.action == Action.DEFER and scope is not None:
        has_allow = any(w.kind == "allow" and matches(w, inp.report.application, inp.report.destination_namespace)
                        for w in inp.report.sync_windows)
        if has_allow and scope.not_before == inp.now:
            op.action, op.confidence, scope = Action.ESCALATE, min(op.confidence, 0.7), None
            op.lines.append("No allow window opens within the horizon to defer to: a human decides.")
        elif scope.not_before is not None:
            op.lines.append(f"Deferred until the next allow window opens at {scope.not_before.isoformat()}.")
    if op.action == Action.ALLOW and scope is not None and scope.until is not None:
        op.lines.append(f"Allowed until {scope.until.isoformat()}; back-port it to Git to keep it.")
    refs = list(dict.fromkeys(op.refs))
    text = " ".join(op.lines)
    quiet = [r for r in refs if r not in text]
    if quiet:
        op.lines.append(f"Also consulted, nothing decisive: {', '.join(quiet)}.")
    return Recommendation(
        event_id=inp.event_id,
        agent=inp.agent,
        domain=op.domain,
        action=op.action,
        confidence=round(op.confidence, 3),
        reasoning=_short(" ".join(op.lines), 19_000),
        evidence_refs=refs,
        findings=op.findings[:50],
        scope=scope,
        created_at=inp.now,
    )
