"""The drift agent's guardrail: verified signatures, the Rego policy (in process or an OPA server), a Verdict.

    guardrail = Guardrail(Verifier(trust, audience="drift"), RegoEngine(default_policy_dir()))
    outcome = await guardrail.evaluate(report=..., proposal=..., specialists=[...],
                                       expected_specialists=["security"], now=now)
"""

from agents.drift.guardrail.engine import (
    DEFAULT_ENTRYPOINT,
    OpaRestEngine,
    PolicyEngine,
    RegoEngine,
    default_policy_dir,
    policy_files,
)
from agents.drift.guardrail.errors import (
    PolicyError,
    PolicyEvaluationError,
    PolicyLoadError,
    PolicyUnavailable,
    PolicyUndefined,
)
from agents.drift.guardrail.guardrail import Guardrail, GuardrailOutcome

__all__ = [
    "DEFAULT_ENTRYPOINT",
    "Guardrail",
    "GuardrailOutcome",
    "OpaRestEngine",
    "PolicyEngine",
    "PolicyError",
    "PolicyEvaluationError",
    "PolicyLoadError",
    "PolicyUnavailable",
    "PolicyUndefined",
    "RegoEngine",
    "default_policy_dir",
    "policy_files",
]
