"""The compliance policy file (policy.yaml next to this module by default), as a typed model."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from agents.kit.datafile import load_yaml_model
from agents.kit.errors import KitConfigError

DEFAULT_POLICY = Path(__file__).with_name("policy.yaml")


class PolicyError(KitConfigError):
    """The policy file is missing or malformed; the message names the file and the field."""


class Regime(BaseModel):
    model_config = ConfigDict(extra="forbid")
    required_labels: list[str] = Field(default_factory=list)
    required_annotations: list[str] = Field(default_factory=list)
    change_process: str = "commit the change to Git and sync it in an allowed window"


class CompliancePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    regulated_label: str = "driftwise.io/compliance"
    regimes: dict[str, Regime] = Field(default_factory=dict)

    def regime(self, name: str) -> Regime:
        return self.regimes.get(name) or self.regimes.get("*") or Regime()


def load_policy(path: Path = DEFAULT_POLICY) -> CompliancePolicy:
    return load_yaml_model(path, CompliancePolicy, what="compliance policy", error=PolicyError, empty_is_default=True)
