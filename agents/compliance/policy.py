"""The compliance policy file (policy.yaml next to this module by default), as a typed model."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_POLICY = Path(__file__).with_name("policy.yaml")


class PolicyError(Exception):
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
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"compliance policy {path} cannot be read: {exc}") from exc
    try:
        return CompliancePolicy.model_validate(data or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise PolicyError(f"compliance policy {path}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from exc
