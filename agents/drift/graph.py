"""The drift decision as a LangGraph graph of named steps (agents.drift.steps).

observe -> gather -> delegate -> reason -> sign -> guardrail -> [request_approval -> approve] -> apply

One thread per drift event (thread_id = event_id). The state is agents.drift.steps.DriftState: the
protocol models themselves, checkpointed by LangGraph's serializer (`checkpoint_serde`). When the
verdict needs a human (agents.drift.acting.applier.needs_approval), `request_approval` writes the
request (status annotation) and `approve` interrupts: the thread waits, durably, for
`Command(resume=Approval)` from the approvals API — in this process or a later one. Scheduling,
deadlines and resuming are agents.drift.runner's; recording the Decision is agents.drift.recording's.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from opentelemetry import trace

from agents.drift.acting.applier import needs_approval
from agents.drift.steps import (
    Apply,
    Approve,
    Delegate,
    DriftState,
    Gather,
    GraphDeps,
    Guard,
    Observe,
    Reason,
    RequestApproval,
    Sign,
    Update,
)
from agents.drift.steps.common import verdict_of

_tracer = trace.get_tracer("driftwise.drift")

DECIDING = (Observe.name, Gather.name, Delegate.name, Reason.name, Sign.name, Guard.name)
"""The steps up to the verdict, in order. A crash re-runs any of them safely: they only read, sign and
ask the specialists again (fresh tokens); the runner runs them with durability "async"."""
ACTING = (RequestApproval.name, Approve.name, Apply.name)
"""The steps after the verdict: they write to Argo CD; the runner runs them with durability "sync"."""

Node = Callable[[DriftState, Runtime[Any]], Awaitable[dict[str, Any]]]


def _node(name: str, step: Callable[..., Awaitable[Update]], *, wants_task_id: bool = False) -> Node:
    # `approve` pauses by raising LangGraph's interrupt: that is not an error of the span.
    pausing = name == Approve.name

    async def node(state: DriftState, runtime: Runtime[Any]) -> dict[str, Any]:
        start = time.perf_counter()
        with _tracer.start_as_current_span(f"drift.{name}", attributes={"driftwise.event_id": state.event.event_id},
                                           record_exception=not pausing, set_status_on_exception=not pausing):
            if wants_task_id:
                info = runtime.execution_info
                # outside a LangGraph run there is no task to replay: a consumer of its own, never reused
                update = await step(state, info.task_id if info is not None else f"{name}-{uuid.uuid4()}")
            else:
                update = await step(state)
        return {**update.fields(), "timings_ms": {name: round((time.perf_counter() - start) * 1000, 2)}}

    node.__name__ = name
    return node


def _after_guardrail(state: DriftState) -> str:
    verdict = verdict_of(state).verdict
    return RequestApproval.name if needs_approval(state.mode or "shadow", verdict) else Apply.name


def build_graph(deps: GraphDeps) -> StateGraph:
    graph = StateGraph(DriftState)
    steps = [Observe(deps), Gather(deps), Delegate(deps), Reason(deps), Sign(deps), Guard(deps),
             RequestApproval(deps), Approve(deps), Apply(deps)]
    for step in steps:
        graph.add_node(step.name, _node(step.name, step, wants_task_id=isinstance(step, Delegate)))
    graph.add_edge(START, DECIDING[0])
    for a, b in itertools.pairwise(DECIDING):
        graph.add_edge(a, b)
    graph.add_conditional_edges(Guard.name, _after_guardrail, [RequestApproval.name, Apply.name])
    graph.add_edge(RequestApproval.name, Approve.name)
    graph.add_edge(Approve.name, Apply.name)
    graph.add_edge(Apply.name, END)
    return graph


def compile_graph(deps: GraphDeps, checkpointer: Any) -> CompiledStateGraph:
    return build_graph(deps).compile(checkpointer=checkpointer)
