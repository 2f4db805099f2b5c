"""A cost specialist: escalate when a workload's requests x replicas grow by more than half in a cost-centre namespace.

The worked example of README's "Add a specialist agent". Options (`specialists.cost.options`):
`label` (the namespace label naming a cost centre, default `cost-center`) and `max_growth` (the
growth a human need not see, default 0.5 = +50%).
"""

from __future__ import annotations

from agents.kit import Skill, Specialist
from agents.kit.workloads import WORKLOAD_KINDS, namespace_labels, namespace_of, total_requests
from protocol.models import Action, AnalysisRequest, Domain, Finding, FindingKind, Recommendation, Severity

_RESOURCES = ("cpu", "memory")


def _growth(before: dict[str, float], after: dict[str, float]) -> dict[str, tuple[float, float]]:
    """resource -> (before, after) for each requested resource that grew; a request added counts as growth."""
    return {r: (before.get(r, 0.0), after[r]) for r in _RESOURCES
            if after.get(r, 0.0) > before.get(r, 0.0)}


class CostSpecialist(Specialist):
    description = "Judges Argo CD drift by what it costs: requests x replicas of workloads in cost-centre namespaces."
    domain = Domain.OPERATIONAL
    skills = (Skill(
        id="analyze-cost", name="Cost of a drift",
        description="Send an AnalysisRequest; get a signed Recommendation: escalate when a workload's requests x "
                    "replicas grow by more than max_growth in a namespace labelled with a cost centre, else abstain.",
        tags=("cost", "capacity", "drift", "argocd"),
        examples=("replicas went from 3 to 12 in a namespace labelled cost-center=retail",),
    ),)

    async def start(self) -> None:
        self.label = str(self.options.get("label", "cost-center"))
        self.max_growth = float(self.options.get("max_growth", 0.5))

    async def analyze(self, request: AnalysisRequest) -> Recommendation:
        report, findings, facts = request.report, [], []
        for drift in report.drifts:
            namespace = namespace_of(report, drift)
            centre = (namespace_labels(report, namespace) or {}).get(self.label)
            if drift.ref.kind not in WORKLOAD_KINDS or not centre:
                continue
            for resource, (was, now) in _growth(total_requests(drift.target), total_requests(drift.live)).items():
                if was and now / was - 1 <= self.max_growth:
                    continue
                grew = f"+{now / was - 1:.0%}" if was else "from nothing"
                facts.append(f"{drift.ref.kind}/{drift.ref.name} in {namespace} ({self.label}={centre}): "
                             f"{resource} requests x replicas {was:g} -> {now:g} ({grew})")
                findings.append(Finding(
                    rule_id="cost.growth", domain=Domain.OPERATIONAL, kind=FindingKind.NOTE, severity=Severity.MEDIUM,
                    resource=drift.ref, path="/spec", message=facts[-1]))
        if not facts:
            return self.abstain(request, f"No workload in a namespace labelled {self.label} requests more than "
                                         f"+{self.max_growth:.0%} (spec.replicas x containers[].resources.requests).")
        return self.recommend(request, Action.ESCALATE, 0.9,
                              "Cost grows beyond what may pass unseen: " + "; ".join(facts)
                              + ". The cost centre's owner decides.", findings)


SPECIALIST = CostSpecialist
