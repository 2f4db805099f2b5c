"""The drift decision's steps, one module each (DESIGN "The flow of one drift event", steps 2-9).

Each step is a class built from GraphDeps and called with the typed DriftState; it returns an Update
naming the fields it sets. agents.drift.graph wires them into the LangGraph graph.
"""

from agents.drift.steps.apply import Apply
from agents.drift.steps.approval import Approve, RequestApproval
from agents.drift.steps.delegate import Delegate
from agents.drift.steps.deps import GraphDeps
from agents.drift.steps.gather import Gather
from agents.drift.steps.guardrail import Guard
from agents.drift.steps.observe import Observe
from agents.drift.steps.reason import Reason
from agents.drift.steps.sign import Sign
from agents.drift.steps.state import ApplyFailure, DriftState, Unreachable, Update, checkpoint_serde

__all__ = ["Apply", "ApplyFailure", "Approve", "Delegate", "DriftState", "Gather", "GraphDeps", "Guard", "Observe",
           "Reason", "RequestApproval", "Sign", "Unreachable", "Update", "checkpoint_serde"]
