"""Builders shared by the guardrail tests: keys, signers, a drift report, recommendations."""

from __future__ import annotations

from datetime import UTC, datetime

from protocol.models import (
    Action,
    Domain,
    DriftReport,
    FieldChange,
    Recommendation,
    ResourceDrift,
    ResourcePaths,
    ResourceRef,
    Scope,
    SignedRecommendation,
    SyncWindow,
)
from protocol.signing import Signer, TrustStore, Verifier, generate_key

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
EVENT = "evt-1"
AGENTS = ("drift", "security", "compliance")


class Keys:
    """Signers for the drift agent and two specialists, all trusted; `mallory` is not trusted."""

    def __init__(self) -> None:
        self.keys = {a: generate_key(a) for a in (*AGENTS, "mallory")}
        self.trust = TrustStore()
        for agent in AGENTS:
            self.trust.add(agent, self.keys[agent])

    def signer(self, agent: str, **kw: object) -> Signer:
        return Signer(agent=agent, key=self.keys[agent], **kw)  # type: ignore[arg-type]

    def verifier(self) -> Verifier:
        return Verifier(self.trust, audience="drift")

    def sign(self, rec: Recommendation, audience: list[str] | None = None) -> SignedRecommendation:
        return self.signer(rec.agent).sign_recommendation(rec, audience or ["drift"])


def report(*, windows: list[SyncWindow] | None = None, event_id: str = EVENT) -> DriftReport:
    ref = ResourceRef(group="apps", kind="Deployment", namespace="payments", name="api")
    return DriftReport(
        event_id=event_id, application="payments", project="prod", destination_namespace="payments",
        namespace_labels={"payments": {"team": "pay"}}, sync_windows=windows or [],
        drifts=[ResourceDrift(ref=ref, changes=[FieldChange(path="/spec/replicas", op="replace", before=3, after=8)])],
        observed_at=NOW,
    )


def scope(paths: tuple[str, ...] = ("/spec/replicas",)) -> Scope:
    ref = ResourceRef(group="apps", kind="Deployment", namespace="payments", name="api")
    return Scope(resources=[ResourcePaths(ref=ref, paths=list(paths))])


def rec(agent: str, action: Action | None, confidence: float = 0.9, *, domain: Domain | None = None,
        event_id: str = EVENT, with_scope: bool = False) -> Recommendation:
    return Recommendation(
        kind="recommendation" if action is not None else "abstain", event_id=event_id, agent=agent,
        domain=domain or (Domain.OPERATIONAL if agent == "drift" else Domain(agent)), action=action,
        confidence=confidence, reasoning=f"{agent} thinks so",
        scope=scope() if with_scope and action in (Action.ALLOW, Action.DEFER) else None, created_at=NOW,
    )


DENY_ALL_DAY = SyncWindow(kind="deny", schedule="0 0 * * *", duration="24h", applications=["*"])
