"""The compliance specialist: regulated scopes, change freezes, required metadata — judged from the report only.

Time comes from `report.observed_at` (the drift agent's clock), never from this process's clock.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from agents.compliance.policy import DEFAULT_POLICY, CompliancePolicy, load_policy
from agents.kit import Skill, Specialist
from agents.kit.workloads import namespace_labels, namespace_of
from protocol import syncwindows
from protocol.models import (
    Action,
    AnalysisRequest,
    Domain,
    DriftReport,
    Finding,
    FindingKind,
    Recommendation,
    Severity,
)


def _regulated(report: DriftReport, label: str) -> dict[str, str]:
    """namespace -> regime, for every namespace the drift touches that carries the compliance label."""
    touched = {ns for d in report.drifts if (ns := namespace_of(report, d))} | (
        {report.destination_namespace} if report.destination_namespace else set()
    )
    out = {}
    for ns in report.namespace_labels if not touched else sorted(touched):
        value = (namespace_labels(report, ns) or {}).get(label)
        if value:
            out[ns] = value
    return out


def _freeze_windows(report: DriftReport, at: datetime) -> list[str]:
    windows = syncwindows.active_windows(
        report.sync_windows, at, report.application, report.destination_namespace, report.destination_server,
    )
    return [f"deny {w.schedule} for {w.duration} ({w.time_zone}, manualSync={str(w.manual_sync).lower()})"
            for w in windows if w.kind == "deny"]


class ComplianceSpecialist(Specialist):
    description = (
        "Judges Argo CD drift for change management: regulated namespaces (label driftwise.io/compliance), "
        "change freezes (deny sync windows active at the report's observed_at) and required metadata; "
        "says what a compliant path is."
    )
    domain = Domain.COMPLIANCE
    skills = (
        Skill(
            id="analyze-compliance",
            name="Change-management analysis of a drift",
            description="Send an AnalysisRequest; get a signed Recommendation (escalate for regulated scope "
                        "in a freeze, abstain otherwise, with findings).",
            tags=("compliance", "change-freeze", "drift", "argocd"),
            examples=(
                "A Deployment in a namespace labelled driftwise.io/compliance=pci changed during a deny window",
                "Is this drift inside a change freeze?",
            ),
        ),
    )

    async def start(self) -> None:
        self.policy: CompliancePolicy = load_policy(Path(self.options.get("policy_file", DEFAULT_POLICY)))

    async def analyze(self, request: AnalysisRequest) -> Recommendation:
        report = request.report
        at = report.observed_at
        regulated = _regulated(report, self.policy.regulated_label)
        freezes = _freeze_windows(report, at)
        findings: list[Finding] = []
        facts: list[str] = []
        for ns, regime in sorted(regulated.items()):
            facts.append(f"namespace {ns} carries {self.policy.regulated_label}={regime}")
        if freezes:
            facts.append(f"at observed_at {at.isoformat()} the project has an active deny window: {'; '.join(freezes)}")
        findings += self._metadata_findings(report, regulated)

        if regulated and freezes:
            regimes = sorted(set(regulated.values()))
            process = "; ".join(f"{r}: {self.policy.regime(r).change_process}" for r in regimes)
            changed = sorted({f"{d.ref.kind}/{d.ref.name} {c.path}" for d in report.drifts for c in d.changes})
            for ns, regime in sorted(regulated.items()):
                findings.insert(0, Finding(
                    rule_id="compliance.change-freeze", domain=Domain.COMPLIANCE, kind=FindingKind.FREEZE,
                    severity=Severity.HIGH,
                    message=f"drift in regulated namespace {ns} ({regime}) during an active change freeze",
                ))
            reasoning = (
                f"Regulated scope during a change freeze: {'; '.join(facts)}. Changed in the cluster: "
                f"{', '.join(changed[:12]) or 'the listed resources'}. No automated change either way "
                f"(neither accept nor revert) while the freeze holds; change management decides. "
                f"Compliant path — {process}."
            )
            return self.recommend(request, Action.ESCALATE, 0.95, reasoning, findings)

        if not regulated:
            why = "no namespace the drift touches carries the label " + self.policy.regulated_label
        else:
            why = f"{'; '.join(facts)}, but no deny sync window is active at observed_at {at.isoformat()}"
            if not report.sync_windows:
                why += " (the project declares no sync windows)"
        if freezes and not regulated:
            why += f"; an active deny window exists ({'; '.join(freezes)}) — Argo CD's windows govern the timing"
            findings.append(Finding(rule_id="compliance.freeze-unregulated", domain=Domain.COMPLIANCE,
                                    kind=FindingKind.NOTE, severity=Severity.INFO,
                                    message="deny sync window active; scope not regulated"))
        return self.abstain(request, f"Nothing for change management to decide: {why}.", findings)

    def _metadata_findings(self, report: DriftReport, regulated: dict[str, str]) -> list[Finding]:
        findings = []
        for drift in report.drifts:
            ns = drift.ref.namespace or report.destination_namespace
            if ns not in regulated or drift.live is None:
                continue
            regime = self.policy.regime(regulated[ns])
            meta = drift.live.get("metadata") if isinstance(drift.live.get("metadata"), dict) else {}
            for field, keys in (("labels", regime.required_labels), ("annotations", regime.required_annotations)):
                present = meta.get(field) if isinstance(meta.get(field), dict) else {}
                for key in keys:
                    if key not in present:
                        findings.append(Finding(
                            rule_id=f"compliance.required-{field[:-1]}", domain=Domain.COMPLIANCE,
                            kind=FindingKind.NOTE, severity=Severity.LOW,
                            resource=drift.ref, path=f"/metadata/{field}",
                            message=f"{drift.ref.kind}/{drift.ref.name} lacks required {field[:-1]} {key!r} "
                                    f"({regulated[ns]})",
                        ))
        return findings
