"""The approvals console: the queue, a decision page, approve/reject, recent decisions, under /console.

Served by the drift agent (agents.drift.app mounts `console_app`); see web.py for the choices."""

from agents.drift.console.web import PREFIX, ConsoleDeps, console_app

__all__ = ["PREFIX", "ConsoleDeps", "console_app"]
