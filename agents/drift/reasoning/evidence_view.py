"""Typed look-ups over the Evidence list: find a tool's result for a workload by what was asked, not by id.

A look-up answers one of three things: the typed value, `MISSING_ERROR` (asked, but the backend
failed: the evidence cannot be had) or None (never asked). The rubric's rule 7 needs exactly that
distinction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from protocol.context import (
    Annotations,
    Autoscalers,
    FieldManagers,
    Incident,
    Incidents,
    KubeEvents,
    MemoryReport,
    NamespaceInfo,
    TrafficReport,
)
from protocol.models import Evidence

T = TypeVar("T")

OPEN_INCIDENT = frozenset({"triggered", "acknowledged"})


@dataclass(frozen=True)
class Found(Generic[T]):
    """A look-up's answer: the value (when the call succeeded) and the evidence ids it came from."""

    value: T | None
    ids: tuple[str, ...]
    errors: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """Asked, and no call for it succeeded."""
        return self.value is None and bool(self.errors)

    @property
    def asked(self) -> bool:
        return bool(self.ids)


class EvidenceView:
    def __init__(self, evidence: list[Evidence]) -> None:
        self.evidence = evidence

    def _match(self, tool: str, args: dict[str, str | None]) -> list[Evidence]:
        out = []
        for ev in self.evidence:
            if ev.tool != tool:
                continue
            if all(v is None or ev.arguments.get(k) == v for k, v in args.items()):
                out.append(ev)
        return out

    def _one(self, result: type[T], tool: str, **args: str | None) -> Found[T]:
        matches = self._match(tool, args)
        ids = tuple(ev.id for ev in matches)
        errors = tuple(f"{ev.id}: {ev.error}" for ev in matches if not ev.ok)
        for ev in matches:
            if ev.ok and isinstance(ev.value, result):
                return Found(ev.value, ids, errors)
        if matches and not errors:
            errors = tuple(f"{ev.id}: unexpected result type" for ev in matches)
        return Found(None, ids, errors)

    def traffic(self, namespace: str, service: str) -> Found[TrafficReport]:
        return self._one(TrafficReport, "workload_traffic", namespace=namespace, service=service)

    def memory(self, namespace: str, workload: str) -> Found[MemoryReport]:
        return self._one(MemoryReport, "workload_memory", namespace=namespace, workload=workload)

    def autoscalers(self, namespace: str, kind: str, name: str) -> Found[Autoscalers]:
        return self._one(Autoscalers, "autoscalers_for", namespace=namespace, kind=kind, name=name)

    def events(self, namespace: str, kind: str, name: str) -> Found[KubeEvents]:
        return self._one(KubeEvents, "events_for", namespace=namespace, kind=kind, name=name)

    def field_managers(self, namespace: str, kind: str, name: str) -> Found[FieldManagers]:
        return self._one(FieldManagers, "field_managers", namespace=namespace, kind=kind, name=name)

    def namespace(self, name: str) -> Found[NamespaceInfo]:
        return self._one(NamespaceInfo, "namespace", name=name)

    def incidents(self, services: list[str]) -> Found[list[Incident]]:
        """Open incidents of any of these services; failed only if every asked service failed."""
        ids: list[str] = []
        errors: list[str] = []
        found: list[Incident] = []
        any_ok = False
        for service in services:
            got = self._one(Incidents, "incidents", service=service)
            ids += got.ids
            errors += got.errors
            if got.value is not None:
                any_ok = True
                found += [i for i in got.value.incidents if i.status in OPEN_INCIDENT and i.resolved_at is None]
        unique = list({i.id: i for i in found}.values())
        return Found(unique if any_ok else None, tuple(dict.fromkeys(ids)), tuple(errors) if not any_ok else ())

    def annotations(self) -> Found[Annotations]:
        return self._one(Annotations, "annotations")
