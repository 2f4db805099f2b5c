"""The agreement ratio per project and decided action as Prometheus gauges (driftwise_agreement_ratio and
driftwise_agreement_judged), read from the state so that every replica and every restart shows the same
numbers: the report's `per_project_action` over its default period.

Refreshed at start-up, whenever the outcome tracker records outcomes, and at least every REFRESH so that the
period slides. Labels are bounded: the four actions, and the MAX_PROJECTS projects with the most judged
outcomes (the rest summed as `_other`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from agents.drift.metrics import DriftMetrics
from agents.drift.outcome_store import OutcomeStore
from protocol.models import Agreement

PERIOD = timedelta(days=7)
"""The report's default period (`--since 7d`)."""
REFRESH = timedelta(minutes=5)
MAX_PROJECTS = 50
OTHER = "_other"
_JUDGED = {Agreement.AGREES.value, Agreement.DISAGREES.value, Agreement.POSSIBLY_UNSAFE.value}


class AgreementGauges:
    def __init__(self, metrics: DriftMetrics, outcomes: OutcomeStore, now: Callable[[], Awaitable[datetime]]) -> None:
        self._metrics = metrics
        self._outcomes = outcomes
        self._now = now
        self._last: datetime | None = None

    async def tick(self, recorded: bool) -> None:
        """Refresh when outcomes were just recorded, or when the last refresh is older than REFRESH."""
        now = await self._now()
        if recorded or self._last is None or now - self._last >= REFRESH:
            await self.refresh(now)

    async def refresh(self, now: datetime) -> None:
        judged: Counter[tuple[str, str]] = Counter()
        agrees: Counter[tuple[str, str]] = Counter()
        start = now - PERIOD
        for project, action, agreement, decided_at in await self._outcomes.agreements():
            if agreement not in _JUDGED or datetime.fromisoformat(decided_at) < start:
                continue
            judged[project, action] += 1
            agrees[project, action] += agreement == Agreement.AGREES.value
        per_project: Counter[str] = Counter()
        for (project, _), n in judged.items():
            per_project[project] += n
        kept = {p for p, _ in sorted(per_project.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_PROJECTS]}
        shown_judged: Counter[tuple[str, str]] = Counter()
        shown_agrees: Counter[tuple[str, str]] = Counter()
        for (project, action), n in judged.items():
            key = (project if project in kept else OTHER, action)
            shown_judged[key] += n
            shown_agrees[key] += agrees[project, action]
        # no await from here on: a scrape sees the old set or the new one, never half of each
        ratio, count = self._metrics.agreement_ratio, self._metrics.agreement_judged
        ratio.clear()
        count.clear()
        for (project, action), n in shown_judged.items():
            ratio.labels(project=project, action=action).set(round(shown_agrees[project, action] / n, 4))
            count.labels(project=project, action=action).set(n)
        self._last = now
