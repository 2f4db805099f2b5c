"""A typed async client of PagerDuty's REST API v2 (`/services`, `/incidents`)."""

from __future__ import annotations

import re
from datetime import datetime

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mcp_servers.common.http import get_json, parse

BACKEND = "pagerduty"
PAGE = 100
"""PagerDuty's largest page."""

_ID = re.compile(r"^[A-Z0-9]{4,20}$")


class Reference(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    summary: str | None = None
    name: str | None = None


class Service(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    name: str | None = None
    summary: str | None = None


class PdIncident(BaseModel):
    """An incident as the REST API returns it (priority and resolved_at are null more often than the spec says)."""

    model_config = ConfigDict(extra="ignore")
    id: str
    incident_number: int | None = None
    title: str | None = None
    summary: str | None = None
    status: str
    urgency: str | None = None
    priority: Reference | None = None
    service: Reference | None = None
    created_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    html_url: str | None = None


class _Services(BaseModel):
    model_config = ConfigDict(extra="ignore")
    services: list[Service] = Field(default_factory=list)


class _Incidents(BaseModel):
    model_config = ConfigDict(extra="ignore")
    incidents: list[PdIncident] = Field(default_factory=list)
    more: bool | None = False


class _IncidentBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    incident: PdIncident


class _ServiceBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    service: Service


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class PagerDutyClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def find_service(self, name_or_id: str) -> Service | None:
        """The service named so (case-insensitive, via `/services?query=`), else with that id; None if neither."""
        body = await get_json(self._http, BACKEND, "/services", {"query": name_or_id, "limit": PAGE})
        services = parse(BACKEND, _Services, body, "/services").services
        wanted = name_or_id.casefold()
        for service in services:
            if (service.name or service.summary or "").casefold() == wanted or service.id == name_or_id:
                return service
        if _ID.match(name_or_id):
            found = await get_json(self._http, BACKEND, f"/services/{name_or_id}", not_found_ok=True)
            if found is not None:
                return parse(BACKEND, _ServiceBody, found, "/services/{id}").service
        return None

    async def incidents(
        self, service_id: str, since: datetime, until: datetime, statuses: list[str], max_items: int
    ) -> tuple[list[PdIncident], bool]:
        """Incidents of the service created in [since, until]; True when more existed than `max_items`."""
        found: list[PdIncident] = []
        offset = 0
        while True:
            params: list[tuple[str, str | int]] = [
                ("service_ids[]", service_id), ("since", _iso(since)), ("until", _iso(until)),
                ("limit", PAGE), ("offset", offset), ("sort_by", "created_at:desc"), ("time_zone", "UTC"),
            ]
            params += [("statuses[]", s) for s in statuses]
            page = parse(BACKEND, _Incidents, await get_json(self._http, BACKEND, "/incidents", params), "/incidents")
            found += page.incidents
            if len(found) > max_items:
                return found[:max_items], True
            if not page.more or not page.incidents:
                return found, False
            offset += len(page.incidents)

    async def open_incidents(self, service_id: str, max_items: int) -> list[PdIncident]:
        """Incidents still triggered or acknowledged, whenever they were opened (`date_range=all`)."""
        params: list[tuple[str, str | int]] = [
            ("service_ids[]", service_id), ("date_range", "all"), ("limit", min(max_items, PAGE)),
            ("statuses[]", "triggered"), ("statuses[]", "acknowledged"), ("time_zone", "UTC"),
        ]
        body = await get_json(self._http, BACKEND, "/incidents", params)
        return parse(BACKEND, _Incidents, body, "/incidents").incidents

    async def incident(self, incident_id: str) -> PdIncident | None:
        body = await get_json(self._http, BACKEND, f"/incidents/{incident_id}", not_found_ok=True)
        return None if body is None else parse(BACKEND, _IncidentBody, body, "/incidents/{id}").incident
