"""The scenario file format (scenarios/README.md) as pydantic models, and loading it from disk.

Fixed parts forbid unknown fields so a typo fails at load; Kubernetes objects, Argo CD objects and
backend records stay free-form dicts because they are whatever the real API would return.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from driftwise.sandbox.crds import CrdError, is_crd, parse_crd
from driftwise.sandbox.errors import ScenarioError

Obj = dict[str, Any]
BACKENDS = ("argocd", "kubernetes", "prometheus", "grafana", "pagerduty")
Backend = Literal["argocd", "kubernetes", "prometheus", "grafana", "pagerduty"]
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SERIES_SPAN_S = 6 * 3600
STEP_S = 15


class _Fixed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ManagedResource(_Fixed):
    group: str = ""
    version: str
    kind: str
    name: str
    namespace: str = ""
    target: Obj
    live: Obj

    @model_validator(mode="after")
    def _objects_match(self) -> ManagedResource:
        for side in ("target", "live"):
            obj = getattr(self, side)
            if obj.get("kind") != self.kind:
                raise ValueError(f"{side}.kind is {obj.get('kind')!r}, expected {self.kind!r}")
            if (obj.get("metadata") or {}).get("name") != self.name:
                raise ValueError(f"{side}.metadata.name differs from name {self.name!r}")
        return self


class ArgoCDSection(_Fixed):
    application: Obj
    project: Obj
    resources: list[ManagedResource] = Field(default_factory=list)

    @model_validator(mode="after")
    def _named(self) -> ArgoCDSection:
        for part in ("application", "project"):
            if not (getattr(self, part).get("metadata") or {}).get("name"):
                raise ValueError(f"{part}.metadata.name is missing")
        return self


class KubernetesSection(_Fixed):
    objects: list[Obj] = Field(default_factory=list)

    @field_validator("objects")
    @classmethod
    def _objects_typed(cls, objects: list[Obj]) -> list[Obj]:
        for i, obj in enumerate(objects):
            for key in ("apiVersion", "kind"):
                if not isinstance(obj.get(key), str):
                    raise ValueError(f"objects[{i}].{key} is missing")
            if not (obj.get("metadata") or {}).get("name"):
                raise ValueError(f"objects[{i}].metadata.name is missing")
            if is_crd(obj):
                try:
                    parse_crd(obj)  # a malformed CRD fails the load, naming what is wrong
                except CrdError as exc:
                    raise ValueError(f"objects[{i}]: {exc}") from None
        return objects


class Series(_Fixed):
    labels: dict[str, str]
    type: Literal["counter", "gauge"]
    points: list[tuple[float, float]] = Field(min_length=1)

    @field_validator("labels")
    @classmethod
    def _has_name(cls, labels: dict[str, str]) -> dict[str, str]:
        name = labels.get("__name__", "")
        if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name):
            raise ValueError(f"labels.__name__ {name!r} is not a valid metric name")
        for key in labels:
            if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", key):
                raise ValueError(f"label name {key!r} is not valid")
        return labels

    @field_validator("points")
    @classmethod
    def _ordered(cls, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        times = [t for t, _ in points]
        if times != sorted(times):
            raise ValueError("points must be in increasing time order")
        if times[-1] > 0:
            raise ValueError("points lie in the future (seconds relative to now must be <= 0)")
        return points


class PrometheusSection(_Fixed):
    series: list[Series] = Field(default_factory=list)


class PagerDutySection(_Fixed):
    services: list[Obj] = Field(default_factory=list)
    incidents: list[Obj] = Field(default_factory=list)


class GrafanaSection(_Fixed):
    annotations: list[Obj] = Field(default_factory=list)
    dashboards: list[Obj] = Field(default_factory=list)
    datasources: list[Obj] = Field(default_factory=list)


class Expectation(_Fixed):
    action: Literal["allow", "defer", "enforce", "escalate"]
    acceptable: list[str] = Field(default_factory=list)
    unsafe: list[str] = Field(default_factory=list)
    why: str = ""


class Scenario(_Fixed):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str
    tags: list[str] = Field(default_factory=list)
    now: datetime
    notification: Obj
    argocd: ArgoCDSection
    kubernetes: KubernetesSection = Field(default_factory=KubernetesSection)
    prometheus: PrometheusSection = Field(default_factory=PrometheusSection)
    pagerduty: PagerDutySection = Field(default_factory=PagerDutySection)
    grafana: GrafanaSection = Field(default_factory=GrafanaSection)
    down: list[Backend] = Field(default_factory=list)
    expect: Expectation | None = None

    @field_validator("now")
    @classmethod
    def _aware(cls, now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("now must carry a time zone (e.g. 2026-11-20T16:30:00Z)")
        return now

    @field_validator("kubernetes", "prometheus", "pagerduty", "grafana", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def application(self) -> str:
        return self.argocd.application["metadata"]["name"]


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_scenario(data: Any, source: str) -> Scenario:
    """Validate one scenario document; errors name the source, the path inside it and the problem."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: the document is not a mapping (expected the scenario format)")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise ScenarioError(f"{source}: {_loc(err['loc'])}: {err['msg']}{more}") from None


def load_file(path: Path) -> Scenario:
    try:
        data = yaml.load(path.read_text(), Loader=_LOADER)
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_scenario(data, str(path))


def load_paths(paths: list[Path]) -> list[Scenario]:
    """Load files and folders (every *.yaml / *.yml inside); ids must be unique."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        elif path.is_file():
            files.append(path)
        else:
            raise ScenarioError(f"{path}: no such file or folder")
    scenarios: list[Scenario] = []
    seen: dict[str, Path] = {}
    for file in files:
        scenario = load_file(file)
        if scenario.id in seen:
            raise ScenarioError(f"{file}: id: {scenario.id!r} is already used by {seen[scenario.id]}")
        seen[scenario.id] = file
        scenarios.append(scenario)
    return scenarios
