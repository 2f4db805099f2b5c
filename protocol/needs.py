"""The evidence a decision may need, named and typed independently of the MCP server that answers it.

A need's arguments are what Driftwise asks ("the traffic of payments/payments-api at 16:30 against
13:00-16:00"); a binding (agents/kit/bindings.py) says which server and tool answer it, how the
arguments map onto that tool's, and which adapter turns the tool's result into the typed value of
protocol/context.py. Driftwise's own MCP servers answer every need with a tool of the need's own
`tool` name and exactly these arguments, so their binding is the identity.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue


class Need(StrEnum):
    TRAFFIC = "traffic"
    MEMORY = "memory"
    INCIDENTS = "incidents"
    ANNOTATIONS = "annotations"
    AUTOSCALERS = "autoscalers"
    EVENTS = "events"
    FIELD_MANAGERS = "field_managers"
    NAMESPACE = "namespace"
    RBAC = "rbac"
    FIELD_DESCRIPTIONS = "field_descriptions"


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def arguments(self) -> dict[str, JsonValue]:
        """The need's arguments as JSON (times in RFC 3339 with Z), without the discriminator."""
        data = self.model_dump(mode="json", exclude={"need"}, exclude_none=True)
        return {k: v.replace("+00:00", "Z") if isinstance(v, str) and k in _TIME_FIELDS else v
                for k, v in data.items()}


_TIME_FIELDS = frozenset({"at", "baseline_start", "baseline_end", "start", "end", "since", "until"})


class TrafficArgs(_Args):
    need: Literal[Need.TRAFFIC] = Need.TRAFFIC
    namespace: str
    service: str
    at: AwareDatetime
    baseline_start: AwareDatetime
    baseline_end: AwareDatetime


class MemoryArgs(_Args):
    need: Literal[Need.MEMORY] = Need.MEMORY
    namespace: str
    workload: str
    start: AwareDatetime
    end: AwareDatetime


class IncidentsArgs(_Args):
    need: Literal[Need.INCIDENTS] = Need.INCIDENTS
    service: str
    since: AwareDatetime
    until: AwareDatetime


class AnnotationsArgs(_Args):
    need: Literal[Need.ANNOTATIONS] = Need.ANNOTATIONS
    start: AwareDatetime
    end: AwareDatetime
    limit: int = Field(default=20, ge=1, le=1000)


class AutoscalersArgs(_Args):
    need: Literal[Need.AUTOSCALERS] = Need.AUTOSCALERS
    kind: str
    name: str
    namespace: str


class EventsArgs(_Args):
    need: Literal[Need.EVENTS] = Need.EVENTS
    kind: str
    name: str
    namespace: str
    since: AwareDatetime | None = None


class FieldManagersArgs(_Args):
    need: Literal[Need.FIELD_MANAGERS] = Need.FIELD_MANAGERS
    api_version: str
    kind: str
    name: str
    namespace: str | None = None


class NamespaceArgs(_Args):
    need: Literal[Need.NAMESPACE] = Need.NAMESPACE
    name: str


class RbacArgs(_Args):
    need: Literal[Need.RBAC] = Need.RBAC
    namespace: str
    service_account: str


class FieldDescriptionsArgs(_Args):
    need: Literal[Need.FIELD_DESCRIPTIONS] = Need.FIELD_DESCRIPTIONS
    api_version: str
    kind: str
    paths: list[str] = Field(min_length=1)


NeedArgs = Annotated[
    TrafficArgs | MemoryArgs | IncidentsArgs | AnnotationsArgs | AutoscalersArgs | EventsArgs | FieldManagersArgs
    | NamespaceArgs | RbacArgs | FieldDescriptionsArgs,
    Field(discriminator="need"),
]
"""One need's typed arguments, told apart by `need`."""

BACKEND: dict[Need, str] = {
    Need.TRAFFIC: "prometheus", Need.MEMORY: "prometheus", Need.INCIDENTS: "pagerduty", Need.ANNOTATIONS: "grafana",
    Need.AUTOSCALERS: "kubernetes", Need.EVENTS: "kubernetes", Need.FIELD_MANAGERS: "kubernetes",
    Need.NAMESPACE: "kubernetes", Need.RBAC: "kubernetes", Need.FIELD_DESCRIPTIONS: "kubernetes",
}
"""The backend each need's evidence comes from (an Evidence's `source`), whichever MCP server reads it."""

TOOL: dict[Need, str] = {
    Need.TRAFFIC: "workload_traffic", Need.MEMORY: "workload_memory", Need.INCIDENTS: "incidents",
    Need.ANNOTATIONS: "annotations", Need.AUTOSCALERS: "autoscalers_for", Need.EVENTS: "events_for",
    Need.FIELD_MANAGERS: "field_managers", Need.NAMESPACE: "namespace", Need.RBAC: "rbac_for",
    Need.FIELD_DESCRIPTIONS: "field_descriptions",
}
"""The need's name as a tool (an Evidence's `tool`), and the tool of Driftwise's own server that answers it."""
