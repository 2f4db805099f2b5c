"""The security specialist: privilege, RBAC, image provenance, exposure and Secret drift, judged by rules as data.

It reads only the report (target/live/changes, namespace labels) and evidence; for workloads it
adds the service account's RBAC from the kubernetes MCP server, and it consults the compliance
agent over A2A when the drift touches a regulated namespace, folding that answer into its own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from agents.kit import Skill, Specialist
from agents.kit.knowledge import DEFAULT_PACKS, Packs, load_packs
from agents.kit.pointers import get
from agents.security.packs import pack_findings
from agents.security.rules import DEFAULT_RULES, RuleSet, evaluate, load_rules, severity_at_least
from protocol.context import RbacReport
from protocol.models import (
    Action,
    AnalysisRequest,
    Domain,
    Evidence,
    Finding,
    FindingKind,
    Recommendation,
    ResourceDrift,
    Severity,
)
from protocol.needs import Need, RbacArgs

COMPLIANCE_LABEL = "driftwise.io/compliance"
_SA_POINTERS = ("/spec/template/spec/serviceAccountName", "/spec/serviceAccountName",
                "/spec/jobTemplate/spec/template/spec/serviceAccountName")


def _service_account(drift: ResourceDrift) -> str | None:
    for doc in (drift.live, drift.target):
        if doc is None:
            continue
        for pointer in _SA_POINTERS:
            value = get(doc, pointer)
            if isinstance(value, str) and value:
                return value
    return None


def _rbac_summary(report: RbacReport) -> str:
    if not report.grants:
        return f"service account {report.namespace}/{report.service_account} holds no RBAC grants"
    parts = []
    for g in report.grants[:4]:
        rules = "; ".join(f"{','.join(r.verbs)} on {','.join(r.resources)}" for r in g.rules[:3])
        parts.append(f"{g.binding_kind} {g.binding_name} -> {g.role_kind} {g.role_name} ({rules})")
    return f"service account {report.namespace}/{report.service_account} holds: " + " | ".join(parts)


class SecuritySpecialist(Specialist):
    description = (
        "Judges Argo CD drift for security meaning: privilege (privileged, root, privilege escalation, "
        "capabilities, host namespaces and paths), RBAC widening, image provenance, exposure "
        "(Services, NetworkPolicies, ports) and changed Secret values. Consults the compliance agent "
        "for regulated namespaces."
    )
    domain = Domain.SECURITY
    needs = (Need.RBAC,)
    consults = ("compliance",)
    skills = (
        Skill(
            id="analyze-security",
            name="Security analysis of a drift",
            description="Send an AnalysisRequest; get a signed Recommendation: enforce for privilege or "
                        "exposure widening, escalate for changed Secret values, abstain when nothing is "
                        "security-relevant. Findings name rule id, severity, resource and JSON Pointer.",
            tags=("security", "rbac", "securityContext", "images", "secrets", "drift", "argocd"),
            examples=(
                "A Deployment's container became privileged and runs as user 0",
                "A Role gained verbs ['*'] on resources ['*']",
                "An image now comes from docker.io while Git uses registry.example.internal",
                "A Secret's data differs from Git (values redacted)",
            ),
        ),
    )

    async def start(self) -> None:
        self.rules: RuleSet = load_rules(Path(self.options.get("rules_file", DEFAULT_RULES)))
        self.packs: Packs = load_packs(Path(self.options.get("packs_dir", DEFAULT_PACKS)))

    async def analyze(self, request: AnalysisRequest) -> Recommendation:
        report = request.report
        hits = evaluate(self.rules, report)
        from_packs = pack_findings(report, self.packs)
        weakened = [f for f in from_packs if f.kind == FindingKind.WIDENED]
        unclassified = [f for f in from_packs if f.kind == FindingKind.UNCLASSIFIED]
        if not hits and not weakened and not unclassified:
            kinds = sorted({f"{d.ref.kind}/{d.ref.name}" for d in report.drifts})
            paths = sorted({c.path for d in report.drifts for c in d.changes})[:10]
            stricter = "".join(f" {f.message}." for f in from_packs)
            return self.abstain(
                request,
                f"No security-relevant change: none of {len(self.rules.rules)} security rules fires on "
                f"{', '.join(kinds) or 'the drifted resources'} (changed paths: {', '.join(paths) or 'none'}), "
                f"and no security control a knowledge pack names is weakened.{stricter}",
                from_packs,
            )
        findings = [f for _, f in hits] + from_packs
        decisive = [(r, f) for r, f in hits if severity_at_least(f.severity, self.rules.action_min_severity)]
        enforcing = [(r, f) for r, f in decisive if self.rules.actions.get(r.category) == "enforce"]
        escalating = [(r, f) for r, f in decisive if self.rules.actions.get(r.category) == "escalate"]
        lines = [f"- [{f.severity.value}] {f.rule_id}: {f.message}" for f in findings]

        if enforcing or weakened:
            cats = sorted({r.category for r, _ in enforcing} | ({"security controls"} if weakened else set()))
            action, confidence = Action.ENFORCE, 0.95
            verdict = (f"The drift widens {', '.join(cats)}: revert it now (sync to Git). "
                       "Security widening is never accepted nor left waiting.")
            if escalating:
                verdict += " A changed Secret value is also present; it needs a human look after the revert."
            if unclassified:
                verdict += " Parts of the drift have no known meaning; a human looks at them after the revert."
        elif escalating:
            action, confidence = Action.ESCALATE, 0.9
            verdict = ("A Secret's value differs from Git; the values are redacted, so whether this is a "
                       "rotation or a compromise cannot be judged here: a human decides.")
        elif unclassified:
            action, confidence = Action.ESCALATE, 0.9
            verdict = ("The drift changes custom-resource fields whose security meaning no knowledge pack "
                       "establishes: unknown is never benign, a human decides.")
        else:
            action, confidence = Action.ESCALATE, 0.55
            verdict = ("Only lower-severity security findings: not clearly a widening, not clearly benign; "
                       "a human should confirm.")

        reasoning = "Security findings (Git target vs cluster live):\n" + "\n".join(lines) + "\n" + verdict
        refs: list[str] = []
        # The RBAC context (maybe an MCP call) and the compliance consult (an A2A call) are
        # independent: wait for both at once rather than one after the other.
        context, folded = await asyncio.gather(self._rbac_context(request, [f for _, f in hits]),
                                               self._fold_compliance(request))
        if context:
            reasoning += "\nContext: " + "; ".join(text for _, text in context)
            refs += [eid for eid, _ in context]
        if folded is not None:
            note, extra = folded
            reasoning += "\n" + note
            findings += extra
        return self.recommend(request, action, confidence, reasoning, findings, evidence_refs=refs)

    async def _rbac_context(self, request: AnalysisRequest, findings: list[Finding]) -> list[tuple[str, str]]:
        """The RBAC of each flagged workload's service account: from the request's evidence, else over MCP."""
        out: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        flagged = {f.resource.key for f in findings if f.resource is not None}
        for drift in request.report.drifts:
            if drift.ref.key not in flagged:
                continue
            sa = _service_account(drift)
            ns = drift.ref.namespace or request.report.destination_namespace
            if not sa or not ns or (ns, sa) in seen:
                continue
            seen.add((ns, sa))
            evidence = self._given_rbac(request.evidence, ns, sa) or await self.context(
                RbacArgs(namespace=ns, service_account=sa), evidence_id=f"security-rbac-{ns}-{sa}", request=request,
            )
            if evidence is not None and isinstance(evidence.value, RbacReport):
                out.append((evidence.id, _rbac_summary(evidence.value)))
        return out

    @staticmethod
    def _given_rbac(evidence: list[Evidence], ns: str, sa: str) -> Evidence | None:
        for e in evidence:
            if (e.ok and isinstance(e.value, RbacReport) and e.value.namespace == ns
                    and e.value.service_account == sa):
                return e
        return None

    async def _fold_compliance(self, request: AnalysisRequest) -> tuple[str, list[Finding]] | None:
        report = request.report
        regulated = {ns: labels[COMPLIANCE_LABEL] for ns, labels in report.namespace_labels.items()
                     if labels.get(COMPLIANCE_LABEL)}
        if not regulated:
            return None
        scope = ", ".join(f"{ns} ({regime})" for ns, regime in sorted(regulated.items()))
        answer = await self.consult("compliance", request)
        if answer is None:
            return (f"Regulated scope {scope}: the compliance agent could not be consulted.", [])
        said = answer.action.value if answer.action else "abstain"
        first = answer.reasoning.split("\n")[0][:400]
        return (f"Regulated scope {scope}: compliance agent says {said} "
                f"(confidence {answer.confidence:.2f}): {first}",
                [f for f in answer.findings if f.severity != Severity.INFO])

