"""The security specialist's reading of the knowledge packs: custom resources' security controls, and the unnamed.

A control weakened is a widening (rule 1: enforce); a control made stricter is noted; a changed path
of a custom resource that no pack names is `unclassified` (rule 7: a human decides; never benign).
Kubernetes' own kinds are judged by the rules in rules.yaml, not here.
"""

from __future__ import annotations

from agents.kit.knowledge import Meaning, Packs, PathMeaning, meanings, unclassified_finding
from protocol.models import Domain, DriftReport, Finding, FindingKind, ResourceDrift, Severity


def _control_finding(drift: ResourceDrift, m: PathMeaning) -> Finding:
    weakened = m.meaning == Meaning.WEAKENED
    kind = FindingKind.WIDENED if weakened else FindingKind.STRENGTHENED
    return Finding(
        rule_id=f"pack.{m.pack}.control-{'weakened' if weakened else 'strengthened'}",
        domain=Domain.SECURITY, kind=kind, severity=Severity.HIGH if weakened else Severity.INFO,
        resource=drift.ref, path=m.at or m.path,
        message=f"{drift.ref.kind}/{drift.ref.name} {m.at or m.path}: security control "
                f"{'weakened' if weakened else 'made stricter'} ({m.pack} pack): {m.detail}",
    )


def pack_findings(report: DriftReport, packs: Packs) -> list[Finding]:
    """Findings for every drifted custom resource: controls weakened or strengthened, paths no pack names."""
    out: list[Finding] = []
    for drift in report.drifts:
        found = meanings(drift, packs)
        out += [_control_finding(drift, m) for m in found if m.meaning in (Meaning.WEAKENED, Meaning.STRENGTHENED)]
        unknown = [m for m in found if m.meaning == Meaning.UNCLASSIFIED]
        if unknown:
            out.append(unclassified_finding(drift.ref, unknown, Domain.SECURITY))
    return out
