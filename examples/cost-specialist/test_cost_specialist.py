"""The cost specialist, tested in process with agents.kit.testing: no keys on disk, no port, no other agent."""

from __future__ import annotations

from cost_specialist import CostSpecialist

from agents.kit.testing import SpecialistHarness, check_conformance, drift, report, request
from protocol.models import Action, AnalysisRequest


def deployment(replicas: int, cpu: str = "250m") -> dict:
    container = {"name": "api", "image": "registry.example/api:1", "resources": {"requests": {"cpu": cpu}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [container]}}}}


def shop(target: dict, live: dict, labels: dict[str, str]) -> AnalysisRequest:
    return request(report(drift("Deployment", "api", namespace="shop", target=target, live=live),
                          namespace_labels={"shop": labels}))


COST_CENTRE = {"cost-center": "retail"}


async def test_growth_beyond_half_in_a_cost_centre_escalates_naming_the_numbers() -> None:
    async with SpecialistHarness(CostSpecialist) as harness:
        rec = await harness.analyze(shop(deployment(3), deployment(12), COST_CENTRE))
    assert rec.action == Action.ESCALATE
    assert "cpu requests x replicas 0.75 -> 3 (+300%)" in rec.reasoning and "cost-center=retail" in rec.reasoning


async def test_more_cpu_per_pod_counts_like_more_pods() -> None:
    async with SpecialistHarness(CostSpecialist) as harness:
        rec = await harness.analyze(shop(deployment(3, "250m"), deployment(3, "1"), COST_CENTRE))
    assert rec.action == Action.ESCALATE and "0.75 -> 3" in rec.reasoning


async def test_growth_within_the_option_or_outside_a_cost_centre_abstains() -> None:
    async with SpecialistHarness(CostSpecialist, options={"max_growth": 4.0}) as harness:
        within = await harness.analyze(shop(deployment(3), deployment(12), COST_CENTRE))
    async with SpecialistHarness(CostSpecialist) as harness:
        unlabelled = await harness.analyze(shop(deployment(3), deployment(12), {"team": "shop"}))
        shrunk = await harness.analyze(shop(deployment(12), deployment(3), COST_CENTRE))
    assert within.kind == unlabelled.kind == shrunk.kind == "abstain"


async def test_the_signed_answer_over_a2a_is_the_in_process_one() -> None:
    req = shop(deployment(3), deployment(12), COST_CENTRE)
    async with SpecialistHarness(CostSpecialist) as harness:
        direct, signed = await harness.analyze(req), await harness.ask(req)
    assert signed.model_dump(exclude={"created_at"}) == direct.model_dump(exclude={"created_at"})


async def test_conforms_to_the_kit() -> None:
    await check_conformance(CostSpecialist, abstains=shop(deployment(3), deployment(12), {}),
                            recommends=shop(deployment(3), deployment(12), COST_CENTRE))
