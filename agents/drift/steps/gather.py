"""Step 3, gather: the evidence plan's needs through their bindings, in parallel; a failure is evidence of itself."""

from __future__ import annotations

import asyncio
import logging

from agents.drift.observe import namespace_labels
from agents.drift.steps.common import report_of
from agents.drift.steps.deps import GraphDeps, PlannedCallLike
from agents.drift.steps.state import DriftState, Update
from protocol.models import DriftReport, Evidence

log = logging.getLogger(__name__)


class Gathered(Update):
    evidence: list[Evidence]
    report: DriftReport
    """The report with the namespaces' labels (regulated? frozen?) read alongside the rest."""


class Gather:
    name = "gather"

    def __init__(self, deps: GraphDeps) -> None:
        self._tools = deps.tools
        self._plan = deps.plan
        self._timeout_s = deps.config.mcp_call_timeout_s

    async def __call__(self, state: DriftState) -> Gathered:
        report = report_of(state)
        if self._tools is None:
            return Gathered(evidence=state.evidence, report=report)
        now = report.observed_at
        results = await asyncio.gather(*(self._call(c, report) for c in self._plan(report, now)))
        # one entry per evidence id: a call made now supersedes an earlier one of the same id
        by_id = {e.id: e for e in state.evidence}
        by_id.update({e.id: e for e in results})
        labels = {**report.namespace_labels, **namespace_labels(list(results))}
        return Gathered(evidence=list(by_id.values()),
                        report=report.model_copy(update={"namespace_labels": labels}))

    async def _call(self, c: PlannedCallLike, report: DriftReport) -> Evidence:
        assert self._tools is not None
        now = report.observed_at
        try:
            return await asyncio.wait_for(
                self._tools.fetch(c.args, evidence_id=c.id, observed_at=now, timeout_s=self._timeout_s),
                timeout=self._timeout_s + 0.5,
            )
        except Exception as exc:  # the pool should not raise; if it does, the call is just missing evidence
            log.warning("evidence %s (%s.%s) for %s failed: %r", c.id, c.server, c.tool, report.event_id, exc)
            return Evidence(id=c.id, source=c.server, tool=c.tool, arguments=dict(c.arguments),
                            observed_at=now, error=f"{type(exc).__name__}: {exc}"[:500])
