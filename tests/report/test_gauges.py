"""The agreement gauges (driftwise_agreement_ratio / _judged) read from the state, on both backends: the
report's per-project-and-action numbers, the period sliding, and the project label bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from agents.drift.agreement_gauges import MAX_PROJECTS, OTHER, PERIOD, REFRESH, AgreementGauges
from agents.drift.metrics import DriftMetrics
from agents.drift.outcome_store import OutcomeStore
from agents.drift.report import PromotionRule, build_report
from agents.drift.state_reader import read_only_state
from tests.report.decisions import A, G, K, decision
from tests.report.states import NOW, State, fill


def _samples(metrics: DriftMetrics, name: str) -> dict[tuple[str, str], float]:
    family = next(f for f in text_string_to_metric_families(metrics.render().decode()) if f.name == name)
    return {(s.labels["project"], s.labels["action"]): s.value for s in family.samples}


@asynccontextmanager
async def _opened(state: State, now: list[datetime]) -> AsyncIterator[tuple[DriftMetrics, AgreementGauges]]:
    """Gauges over the state, on a clock the test moves (`now[0]`)."""
    metrics, db = DriftMetrics(), await state.open()

    async def clock() -> datetime:
        return now[0]

    try:
        yield metrics, AgreementGauges(metrics, OutcomeStore(db), clock)
    finally:
        await db.close()


async def _gauges(state: State, now: datetime, recorded: bool = True) -> DriftMetrics:
    async with _opened(state, [now]) as (metrics, gauges):
        await gauges.tick(recorded)
        return metrics


def test_the_gauges_carry_the_reports_agreement_per_project_and_action(state: State) -> None:
    metrics = asyncio.run(_gauges(state, NOW))
    ratio, judged = _samples(metrics, "driftwise_agreement_ratio"), _samples(metrics, "driftwise_agreement_judged")

    async def report() -> object:
        async with read_only_state(state.dsn, state.path) as found:
            return build_report(await found.decisions(100), NOW, since=PERIOD, project=None,
                                mode_for=lambda p: "shadow", rule=PromotionRule())

    expected = asyncio.run(report()).per_project_action  # type: ignore[attr-defined]
    judged_pairs = {(p, a): c for p, actions in expected.items() for a, c in actions.items() if c.judged}
    assert judged_pairs and set(ratio) == set(judged_pairs) == set(judged)
    for key, c in judged_pairs.items():
        assert (ratio[key], judged[key]) == (c.ratio, c.judged), key
    assert ratio[("prod", "enforce")] == 0.5
    # the decisions (two days old) leave the period: the next refresh drops them
    later = asyncio.run(_gauges(state, NOW + PERIOD, recorded=False))
    assert _samples(later, "driftwise_agreement_ratio") == {}


def test_the_project_label_is_bounded(state: State) -> None:
    many = [decision(A.ENFORCE, K.REVERTED if i % 2 else K.ADOPTED, G.AGREES if i % 2 else G.DISAGREES,
                     project=f"p{i:03d}") for i in range(MAX_PROJECTS + 5)]
    asyncio.run(fill(state, many))
    metrics = asyncio.run(_gauges(state, NOW))
    judged = _samples(metrics, "driftwise_agreement_judged")
    projects = {p for p, _ in judged}
    assert len(projects) == MAX_PROJECTS + 1 and OTHER in projects
    # nothing is lost: every judged outcome is under some label
    assert sum(judged.values()) == 3 + len(many)


def test_a_refresh_waits_for_new_outcomes_or_the_refresh_interval(state: State) -> None:
    async def run() -> list[dict[tuple[str, str], float]]:
        clock = [NOW]
        seen = []
        async with _opened(state, clock) as (metrics, gauges):
            for advance, recorded in ((timedelta(0), False), (timedelta(0), False), (timedelta(0), True),
                                      (REFRESH - timedelta(seconds=1), False), (REFRESH, False)):
                clock[0] = NOW + advance
                metrics.agreement_judged.clear()  # only a refresh sets it again
                await gauges.tick(recorded)
                seen.append(_samples(metrics, "driftwise_agreement_judged"))
        return seen

    first, quiet, recorded, not_yet, due = asyncio.run(run())
    assert first, "the first tick refreshes"
    assert quiet == {} and not_yet == {}
    assert recorded == first and due == first
