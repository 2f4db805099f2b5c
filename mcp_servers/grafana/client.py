"""A typed async client of Grafana's HTTP API (`/api/annotations`, `/api/search`)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from pydantic import BaseModel, ConfigDict, Field

from mcp_servers.common.http import get_json, parse

BACKEND = "grafana"


class GrafanaAnnotation(BaseModel):
    """An annotation as `GET /api/annotations` returns it (times in epoch milliseconds)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: int
    time: int
    time_end: int | None = Field(default=None, alias="timeEnd")
    dashboard_uid: str | None = Field(default=None, alias="dashboardUID")
    login: str | None = ""
    text: str | None = ""
    tags: list[str] | None = None


class GrafanaDashboardHit(BaseModel):
    """One hit of `GET /api/search`."""

    model_config = ConfigDict(extra="ignore")

    uid: str
    title: str
    url: str | None = ""
    type: str | None = ""
    tags: list[str] | None = None


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


class GrafanaClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def annotations(
        self, start: datetime, end: datetime, *, tags: list[str], dashboard_uid: str | None, limit: int
    ) -> list[GrafanaAnnotation]:
        params: list[tuple[str, str | int]] = [("from", ms(start)), ("to", ms(end)), ("limit", limit)]
        params += [("tags", t) for t in tags]  # Grafana matches annotations carrying all of them
        if dashboard_uid:
            params.append(("dashboardUID", dashboard_uid))
        body = await get_json(self._http, BACKEND, "/api/annotations", params)
        return parse(BACKEND, list[GrafanaAnnotation], body, "/api/annotations")

    async def search_dashboards(self, query: str | None, tags: list[str], limit: int) -> list[GrafanaDashboardHit]:
        params: list[tuple[str, str | int]] = [("type", "dash-db"), ("limit", limit)]
        if query:
            params.append(("query", query))
        params += [("tag", t) for t in tags]
        body = await get_json(self._http, BACKEND, "/api/search", params)
        return parse(BACKEND, list[GrafanaDashboardHit], body, "/api/search")
