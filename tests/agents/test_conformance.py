"""One conformance suite (agents.kit.testing.check_conformance) over every specialist we ship, and proof it can fail."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime

import pytest

from agents.compliance import ComplianceSpecialist
from agents.kit import Skill, Specialist
from agents.kit.errors import KitConfigError
from agents.kit.testing import ConformanceError, SpecialistHarness, check_conformance, drift, report, request
from agents.security import SecuritySpecialist
from protocol.models import Action, AnalysisRequest, Domain, Recommendation, SyncWindow
from tests.support.processes import ROOT

AT = datetime(2026, 3, 6, 15, tzinfo=UTC)  # a Friday afternoon, inside the freeze below


def _cost_specialist() -> type[Specialist]:
    """The worked example, loaded from examples/ as a user's own package would be."""
    if "cost_specialist" not in sys.modules:
        path = ROOT / "examples" / "cost-specialist" / "cost_specialist" / "__init__.py"
        spec = importlib.util.spec_from_file_location("cost_specialist", path)
        assert spec is not None and spec.loader is not None
        sys.modules["cost_specialist"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["cost_specialist"].SPECIALIST


def deployment(*, replicas: int = 3, privileged: bool = False, cpu: str = "250m") -> dict:
    container = {"name": "api", "image": "registry.example/shop/api:1.4", "resources": {"requests": {"cpu": cpu}},
                 "securityContext": {"privileged": privileged}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"replicas": replicas, "template": {"spec": {"serviceAccountName": "api",
                                                                 "containers": [container]}}}}


def configmap(level: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api", "namespace": "shop"},
            "data": {"LOG_LEVEL": level}}


def ask(target: dict, live: dict, *, labels: dict[str, str] | None = None, freeze: bool = False) -> AnalysisRequest:
    windows = [SyncWindow(kind="deny", schedule="0 0 * * 5", duration="48h", applications=["*"])] if freeze else []
    kind = live["kind"]
    return request(report(drift(kind, "api", namespace="shop", target=target, live=live),
                          namespace_labels={"shop": labels or {}}, sync_windows=windows, observed_at=AT))


SAMPLES = {
    "security": (SecuritySpecialist,
                 ask(configmap("info"), configmap("debug")),
                 ask(deployment(), deployment(privileged=True))),
    "compliance": (ComplianceSpecialist,
                   ask(configmap("info"), configmap("debug"), freeze=True),
                   ask(configmap("info"), configmap("debug"), labels={"driftwise.io/compliance": "pci"}, freeze=True)),
    "cost": (None,
             ask(deployment(), deployment(replicas=12)),
             ask(deployment(), deployment(replicas=12), labels={"cost-center": "retail"})),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
async def test_every_shipped_specialist_conforms(name: str) -> None:
    cls, abstains, recommends = SAMPLES[name]
    await check_conformance(cls or _cost_specialist(), agent=name, abstains=abstains, recommends=recommends)


async def test_analyze_runs_in_process_on_a_built_report() -> None:
    async with SpecialistHarness(SecuritySpecialist, agent="security") as harness:
        rec = await harness.analyze(ask(deployment(), deployment(privileged=True)))
    assert rec.action == Action.ENFORCE
    assert "/spec/template/spec/containers/0/securityContext/privileged" in rec.reasoning


async def test_a_hanging_dependency_lowers_confidence_and_is_named() -> None:
    regulated = ask(deployment(), deployment(privileged=True), labels={"driftwise.io/compliance": "pci"})
    async with SpecialistHarness(SecuritySpecialist, agent="security", hang_dependencies=True,
                                 deadline_s=2.0) as harness:
        rec = await harness.ask(regulated)
    assert rec.action == Action.ENFORCE and rec.confidence < 0.95 and "Degraded" in rec.reasoning
    assert "compliance" in rec.reasoning


# --- the suite fails for specialists that break the contract ---------------------------------------


class _Base(Specialist):
    description = "a specialist under test"
    domain = Domain.OPERATIONAL
    skills = (Skill(id="s", name="s", description="s", tags=("t",), examples=("e",)),)

    async def analyze(self, request: AnalysisRequest) -> Recommendation:
        return self.abstain(request, "nothing")


class NeverAbstains(_Base):
    async def analyze(self, request: AnalysisRequest) -> Recommendation:
        return self.recommend(request, Action.ALLOW, 0.9, "always allow")


class WrongEvent(_Base):
    async def analyze(self, request: AnalysisRequest) -> Recommendation:
        rec = self.recommend(request, Action.ALLOW, 0.9, "about another event")
        return rec.model_copy(update={"event_id": "evt-other"})


class Crashes(_Base):
    async def analyze(self, request: AnalysisRequest) -> Recommendation:
        raise RuntimeError("boom")


class NoTags(_Base):
    skills = (Skill(id="s", name="s", description="s", examples=("e",)),)


class NoExamples(_Base):
    skills = (Skill(id="s", name="s", description="s", tags=("t",)),)


@pytest.mark.parametrize(("cls", "failure"), [
    (NeverAbstains, "expected a abstain, got recommendation"),
    (WrongEvent, "is bound to evt-other"),
    (Crashes, "raised PeerProtocolError"),
    (NoExamples, "skill 's' has no examples"),
])
async def test_the_suite_names_what_a_broken_specialist_breaks(cls: type[Specialist], failure: str) -> None:
    _, abstains, recommends = SAMPLES["cost"]
    with pytest.raises(ConformanceError) as caught:
        await check_conformance(cls, abstains=abstains, recommends=recommends)
    assert any(failure in f for f in caught.value.failures), caught.value.failures


async def test_a_skill_without_tags_stops_the_specialist_naming_the_fix() -> None:
    with pytest.raises(KitConfigError, match=r"Skill 's' lacks tags .*tags=\("):
        async with SpecialistHarness(NoTags):
            pass
