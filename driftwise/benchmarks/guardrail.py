"""Cost of one guardrail evaluation in process: verify a proposal and two specialists' JWS, then the Rego policy.

    python -m driftwise.benchmarks.guardrail [--n 200]

Prints p50/p95 of the whole evaluate() and of its verify and policy parts, beside the signing
calibration of the same run (machines differ: quote the ratio). Moved here from a pass/fail test,
where a wall-clock bound only measured the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime

from agents.drift.guardrail import Guardrail, RegoEngine, default_policy_dir
from driftwise.benchmarks import signing
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
)
from protocol.signing import Signer, TrustStore, Verifier, generate_key

EVENT = "evt-bench"
REF = ResourceRef(group="apps", kind="Deployment", namespace="payments", name="api")


def _rec(agent: str, action: Action | None, confidence: float, domain: Domain, now: datetime) -> Recommendation:
    scope = Scope(resources=[ResourcePaths(ref=REF, paths=["/spec/replicas"])]) if action == Action.ALLOW else None
    return Recommendation(kind="recommendation" if action else "abstain", event_id=EVENT, agent=agent, domain=domain,
                          action=action, confidence=confidence, reasoning=f"{agent} thinks so", scope=scope,
                          created_at=now)


async def run(n: int) -> dict[str, float]:
    now = datetime.now(UTC)
    keys = {a: generate_key(a) for a in ("drift", "security", "compliance")}
    trust = TrustStore()
    for agent, key in keys.items():
        trust.add(agent, key)
    signers = {a: Signer(agent=a, key=k) for a, k in keys.items()}
    report = DriftReport(
        event_id=EVENT, application="payments", project="prod", destination_namespace="payments",
        namespace_labels={"payments": {"team": "pay"}}, observed_at=now,
        drifts=[ResourceDrift(ref=REF, changes=[FieldChange(path="/spec/replicas", op="replace", before=3, after=8)])])
    engine = RegoEngine(default_policy_dir())
    try:
        guardrail = Guardrail(Verifier(trust, audience="drift"), engine, 0.8)
        total, verify, policy = [], [], []
        for _ in range(n):
            proposal = signers["drift"].sign_recommendation(_rec("drift", Action.ALLOW, 0.95, Domain.OPERATIONAL, now),
                                                            ["drift"])
            specialists = [
                signers["security"].sign_recommendation(_rec("security", None, 0.9, Domain.SECURITY, now), ["drift"]),
                signers["compliance"].sign_recommendation(
                    _rec("compliance", Action.DEFER, 0.9, Domain.COMPLIANCE, now), ["drift"]),
            ]
            started = time.perf_counter()
            out = await guardrail.evaluate(report=report, proposal=proposal, specialists=specialists,
                                           expected_specialists=["security", "compliance"], now=now)
            total.append((time.perf_counter() - started) * 1000)
            verify.append(out.timings_ms["verify"])
            policy.append(out.timings_ms["policy"])
    finally:
        engine.close()
    return {"p50_ms": statistics.median(total), "p95_ms": statistics.quantiles(total, n=20)[18],
            "verify_p50_ms": statistics.median(verify), "policy_p50_ms": statistics.median(policy)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    calibration = signing.run()
    r = asyncio.run(run(args.n))
    print(f"guardrail.evaluate: p50 {r['p50_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms "
          f"(verify p50 {r['verify_p50_ms']:.2f} ms, policy p50 {r['policy_p50_ms']:.2f} ms)")
    ratio = r["p50_ms"] * 1000 / calibration["verify_p50_us"]
    print(f"calibration: sign p50 {calibration['sign_p50_us']:.0f} us, "
          f"verify p50 {calibration['verify_p50_us']:.0f} us; evaluate p50 = {ratio:.0f}x one verify")


if __name__ == "__main__":
    main()
