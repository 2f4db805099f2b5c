"""The sandbox's one error taxonomy."""

from __future__ import annotations


class SandboxError(Exception):
    """Base of every error the sandbox raises on purpose."""


class ScenarioError(SandboxError):
    """A scenario file is malformed: the message names the file, the path inside it and the problem."""


class UnknownScenario(SandboxError):
    """No loaded scenario has that id."""


class PrometheusUnavailable(SandboxError):
    """The real Prometheus could not be prepared or started."""


class UnknownResource(SandboxError):
    """The active world has no such application, or the application manages no such resource."""
