"""The security specialist agent (privilege, RBAC, image provenance, exposure, Secrets)."""

from agents.security.agent import SecuritySpecialist

SPECIALIST = SecuritySpecialist

__all__ = ["SPECIALIST", "SecuritySpecialist"]
