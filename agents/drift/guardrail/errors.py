"""The guardrail package's error taxonomy; every one of them makes the guardrail fail closed.

PolicyError
 ├── PolicyLoadError          the Rego files cannot be found, read or compiled (a start-up error)
 ├── PolicyUnavailable        the OPA server cannot be reached, times out or answers non-200
 ├── PolicyUndefined          the policy has no value at the entrypoint for this input
 └── PolicyEvaluationError    evaluation failed, or its result is not a usable verdict
"""

from __future__ import annotations


class PolicyError(Exception):
    """Base of the guardrail's policy errors; `code` is the verdict reason code it becomes."""

    code = "opa.error"


class PolicyLoadError(PolicyError):
    code = "opa.load_failed"


class PolicyUnavailable(PolicyError):
    code = "opa.unavailable"


class PolicyUndefined(PolicyError):
    code = "opa.undefined"


class PolicyEvaluationError(PolicyError):
    code = "opa.evaluation_failed"
