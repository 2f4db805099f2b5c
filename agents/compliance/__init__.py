"""The compliance specialist agent (change freezes, regulated namespaces, required metadata)."""

from agents.compliance.agent import ComplianceSpecialist

SPECIALIST = ComplianceSpecialist

__all__ = ["SPECIALIST", "ComplianceSpecialist"]
