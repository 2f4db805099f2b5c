"""The visible scenarios decided with the drift agent (and the security agent) reading their evidence through the
community MCP servers, against the same decisions with Driftwise's own servers.

Both runs are the whole system as real processes over one sandbox world per scenario: the same eval loop as
`driftwise eval`. The community servers are the real ones (scripts/community-mcp.sh installs them), each the
stdio child of the agent that reads through it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from driftwise.evaluation import Endpoints, EvalError, SystemClient, evaluate, load_labelled, rounds, running_system
from driftwise.settings import Settings, load_settings
from driftwise.supervisor import free_port_block, ports_needed, prepare_settings
from protocol.models import Decision
from protocol.needs import BACKEND, TOOL, Need
from tests.support.community_mcp import installed, mcp_settings, version
from tests.support.processes import SCENARIOS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated_env")]

COMMUNITY_SERVER = {"kubernetes-mcp-server": "k8s", "prometheus-mcp-server": "prom", "mcp-grafana": "graf",
                    "pagerduty-mcp": "pd"}


def system_settings(state: Path, community: list[str]) -> Settings:
    """Settings of a fresh system on a free port block; with `community`, those servers bound in."""
    settings = load_settings()
    settings = prepare_settings(settings, state_dir=state, mode="autonomous", llm=False,
                                port_base=free_port_block(ports_needed(settings)))
    if not community:
        return settings
    state.mkdir(parents=True, exist_ok=True)
    # validated as a settings file would be, then merged into the relocated settings
    mcp = load_settings(mcp=mcp_settings(community, settings, state)).mcp
    return settings.model_copy(update={"mcp": settings.mcp.model_copy(update={"servers": mcp.servers,
                                                                                "use": mcp.use})})


async def decide_all(settings: Settings) -> dict[str, tuple[str, Decision]]:
    """scenario id -> (final action, the decision) for every visible scenario, on a fresh system."""
    scenarios = load_labelled(SCENARIOS)
    assert len(rounds(scenarios)) == 1, "the visible scenarios' applications are distinct: one system decides them"
    out: dict[str, tuple[str, Decision]] = {}
    console = Console(quiet=True)
    # No moving ports on a conflict here: the community servers' settings name the sandbox's ports.
    async with running_system(settings, sandbox_paths=[SCENARIOS], console=console) as system, \
            httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
        client = SystemClient(http, Endpoints.from_settings(system.settings))
        for result in await evaluate(client, scenarios, timeout_s=40.0):
            assert result.event_id is not None, f"{result.id}: {result.error}"
            out[result.id] = (result.got, await client.decision(result.event_id))
    return out


async def decide_on_free_ports(state: Path, community: list[str]) -> dict[str, tuple[str, Decision]]:
    """decide_all, on a new free port block when another program took a port meanwhile (other tests run too)."""
    for attempt in range(3):
        try:
            return await decide_all(system_settings(state / f"try-{attempt}", community))
        except EvalError as exc:
            if "address already in use" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


async def test_the_visible_scenarios_decide_the_same_through_the_community_servers(tmp_path: Path) -> None:
    names = installed()
    started = time.perf_counter()
    own = await decide_on_free_ports(tmp_path / "own", [])
    own_s = time.perf_counter() - started
    community = await decide_on_free_ports(tmp_path / "community", names)
    print(f"own servers {own_s:.1f}s, community servers {time.perf_counter() - started - own_s:.1f}s")
    assert set(own) == set(community) == {p.stem for p in SCENARIOS.glob("*.yaml")}
    differ = {sid: (own[sid][0], community[sid][0]) for sid in own if own[sid][0] != community[sid][0]}
    assert not differ, f"decisions differ (own, community): {differ}; community evidence errors: " + "; ".join(
        f"{e.id}: {e.error}" for sid in differ for e in community[sid][1].evidence if e.error)

    # The evidence really came through the community servers, and says the same as our servers' did.
    bound = {need: COMMUNITY_SERVER[preset] for preset in names for need in _needs_of(preset)}
    seen: dict[Need, int] = {}
    rows = []
    for sid, (_, decision) in community.items():
        theirs = {e.id: e for e in decision.evidence}
        ours = {e.id: e for e in own[sid][1].evidence}
        assert set(theirs) == set(ours), sid
        for eid, ev in theirs.items():
            need = _need_of(ev.source, ev.tool)
            if need not in bound:
                continue
            assert ev.via is not None and ev.via.startswith(f"{bound[need]}."), (sid, eid, ev.via)
            seen[need] = seen.get(need, 0) + 1
            if need == Need.FIELD_MANAGERS:
                # kubernetes-mcp-server strips managedFields: the binding says so instead of inventing managers
                assert ev.error is not None and "managedFields" in ev.error, (sid, eid, ev.error)
                continue
            if ours[eid].ok:
                assert ev.ok, (sid, eid, ev.error)
                lost = NOT_CARRIED.get(need, frozenset())
                assert _comparable(ev.value, lost) == _comparable(ours[eid].value, lost), (sid, eid, ev.value,
                                                                                          ours[eid].value)
            rows.append(eid)
    # The security agent read RBAC through the same binding: its context lines are the same.
    with_rbac = [sid for sid in own if _rbac_context(own[sid][1])]
    assert with_rbac, "no visible scenario made the security agent read RBAC: this check would be empty"
    for sid in own:
        assert _rbac_context(community[sid][1]) == _rbac_context(own[sid][1]), sid
    assert {Need.TRAFFIC, Need.NAMESPACE, Need.INCIDENTS, Need.ANNOTATIONS, Need.EVENTS, Need.AUTOSCALERS} <= \
        set(seen) | ({Need.INCIDENTS} if "pagerduty-mcp" not in names else set()), seen
    print("community servers:", ", ".join(f"{n} {version(n)}" for n in names), "needs seen:",
          {n.value: c for n, c in seen.items()})


def _rbac_context(decision: Decision) -> list[str]:
    return sorted(line for r in decision.recommendations for line in r.recommendation.reasoning.splitlines()
                  if line.startswith("Context: ") and "security-rbac-" in " ".join(r.recommendation.evidence_refs))


def _needs_of(preset: str) -> list[Need]:
    from agents.kit.bindings import SHIPPED

    return list(SHIPPED[preset])


def _need_of(source: str, tool: str) -> Need | None:
    return next((n for n in Need if BACKEND[n] == source and TOOL[n] == tool), None)


NOT_CARRIED = {Need.INCIDENTS: frozenset({"urgency", "html_url"}),
               Need.EVENTS: frozenset({"count", "source", "first_seen"})}
"""Fields a community server's answers do not carry: pagerduty-mcp's incident model has no urgency or URL;
kubernetes-mcp-server lists an event's reason, message, type, object and one time, not its count or source."""


def _comparable(value: Any, lost: frozenset[str]) -> Any:
    """A value's data without the free-text `note` (each server words what it could not find its own way) and
    without the fields the server does not carry."""
    data = value.model_dump(mode="json")
    skip = {"note", "truncated", *lost}

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in skip}
        if isinstance(v, list):
            return [strip(x) for x in v]
        if isinstance(v, float):
            return round(v, 6)
        return v

    return strip(data)
