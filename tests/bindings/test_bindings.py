"""Bindings: resolution from settings, start-up refusals naming the binding, templates, and one bound fetch."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agents.kit.bindings import BindingError, BoundSources, fill, resolve_bindings, template_values
from agents.kit.mcp_pool import McpEndpoint, McpPool
from driftwise.cli.bindings import mcp_wiring
from driftwise.settings import ConfigError, load_settings
from protocol.context import TrafficReport
from protocol.needs import MemoryArgs, Need, TrafficArgs

TOY = Path(__file__).with_name("toy_server.py")
NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
TRAFFIC = TrafficArgs(namespace="payments", service="payments-api", at=NOW,
                      baseline_start=datetime(2026, 11, 20, 13, tzinfo=UTC),
                      baseline_end=datetime(2026, 11, 20, 16, tzinfo=UTC))


def toy_pool() -> McpPool:
    return McpPool({"toy": McpEndpoint(command=sys.executable, args=(str(TOY),), open_timeout_s=30)},
                   call_timeout_s=10.0)


def test_the_default_binds_every_need_to_driftwise_own_server_with_its_own_tool() -> None:
    servers, bindings = mcp_wiring(load_settings())
    assert set(bindings) == set(Need)
    assert {b.server for b in bindings.values()} == set(servers) == {"prometheus", "grafana", "pagerduty",
                                                                    "kubernetes"}
    assert bindings[Need.RBAC].calls["result"].tool == "rbac_for" and bindings[Need.RBAC].adapter == "driftwise"


def test_use_binds_every_need_a_preset_answers_and_only_those() -> None:
    settings = load_settings(mcp={"servers": {"k8s": {"command": "kubernetes-mcp-server", "args": ["--read-only"]}},
                                  "use": {"kubernetes-mcp-server": "k8s"}})
    servers, bindings = mcp_wiring(settings)
    on_k8s = {n for n, b in bindings.items() if b.server == "k8s"}
    assert on_k8s == {Need.NAMESPACE, Need.AUTOSCALERS, Need.EVENTS, Need.FIELD_MANAGERS, Need.RBAC}
    assert bindings[Need.FIELD_DESCRIPTIONS].server == "kubernetes"  # no community equivalent: ours still
    assert servers["k8s"]["command"] == "kubernetes-mcp-server"
    # a specialist gets only the servers of the needs it reads
    servers, bindings = mcp_wiring(settings, [Need.RBAC])
    assert list(servers) == ["k8s"] and list(bindings) == [Need.RBAC]


@pytest.mark.parametrize(("mcp", "named"), [
    ({"use": {"no-such-server-software": "prometheus"}}, "mcp.use.no-such-server-software"),
    ({"use": {"mcp-grafana": "nowhere"}}, "mcp.use.mcp-grafana"),
    ({"bindings": {"traffic": {"server": "nowhere", "preset": "prometheus-mcp-server"}}}, "mcp.bindings.traffic"),
    ({"bindings": {"traffic": {"server": "prometheus", "preset": "mcp-grafana"}}}, "does not answer need 'traffic'"),
    ({"bindings": {"memory": {"server": "prometheus", "adapter": "prometheus-api.traffic",
                              "calls": {"result": {"tool": "q"}}}}}, "yields traffic, not memory"),
    ({"bindings": {"traffic": {"server": "prometheus", "adapter": "prometheus-api.traffic",
                               "calls": {"requests": {"tool": "q"}}}}}, "needs calls named baseline_errors"),
])
def test_a_wrong_binding_is_a_config_error_naming_it(mcp: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        mcp_wiring(load_settings(mcp=mcp))


@pytest.mark.parametrize("binding", [{"server": "prometheus"},
                                     {"server": "prometheus", "preset": "driftwise", "adapter": "driftwise"}])
def test_a_binding_is_a_preset_or_calls_with_an_adapter(binding: dict) -> None:
    with pytest.raises(ConfigError, match=r"mcp\.bindings\.traffic.*either `preset`, or both `calls` and `adapter`"):
        load_settings(mcp={"bindings": {"traffic": binding}})


def test_an_external_server_may_not_take_one_of_our_names() -> None:
    with pytest.raises(ConfigError, match="prometheus"):
        load_settings(mcp={"servers": {"prometheus": {"url": "http://x/mcp"}}})


def test_templates_keep_types_and_refuse_a_name_that_is_not_plain() -> None:
    values = template_values(TRAFFIC)
    assert fill({"from": "{baseline_start_ms}", "q": 'up{{ns="{namespace}"}}'}, values) == {
        "from": 1795179600000, "q": 'up{ns="payments"}'}
    assert template_values(MemoryArgs(namespace="n", workload="a.b", start=NOW, end=NOW))["pod_regex"].startswith(
        "a\\\\.b-")
    hostile = TRAFFIC.model_copy(update={"service": 'x"}) or vector(1'})
    with pytest.raises(BindingError, match="not a plain name"):
        fill({"q": 'up{{service="{service}"}}'}, template_values(hostile))


def _bound(pool: McpPool, read_only: frozenset[str] = frozenset(), tool: str = "execute_query") -> BoundSources:
    binding = resolve_bindings({"prometheus-mcp-server": "toy"}, {}, {"toy"})[Need.TRAFFIC]
    calls = {name: c.model_copy(update={"tool": tool}) if c.tool == "execute_query" else c
             for name, c in binding.calls.items()}
    return BoundSources(pool, {Need.TRAFFIC: binding.model_copy(update={"calls": calls})}, read_only)


@pytest.mark.slow
async def test_start_up_refuses_a_missing_tool_and_a_tool_not_read_only_naming_the_binding() -> None:
    async with toy_pool() as pool:
        with pytest.raises(BindingError, match=r"binding traffic \(server toy, call requests\): the server has no "
                                               r"tool 'no_such_tool'"):
            await _bound(pool, tool="no_such_tool").check()
        with pytest.raises(BindingError, match=r"binding traffic .*'execute_range_query' is not annotated read-only"):
            await _bound(pool).check()
        refused = await _bound(pool).fetch(TRAFFIC, evidence_id="t", observed_at=NOW)
        assert refused.error is not None and "not annotated read-only" in refused.error  # never called


@pytest.mark.slow
async def test_a_bound_need_yields_the_typed_evidence_through_the_adapter() -> None:
    async with toy_pool() as pool:
        sources = _bound(pool, read_only=frozenset({"toy"}))
        await sources.check()
        ev = await sources.fetch(TRAFFIC, evidence_id="t", observed_at=NOW)
    assert ev.error is None, ev.error
    assert isinstance(ev.value, TrafficReport)
    assert (ev.value.request_rate, ev.value.baseline_request_rate, ev.value.rate_change) == (2.0, 1.0, 2.0)
    assert (ev.source, ev.tool, ev.via) == ("prometheus", "workload_traffic", "toy.execute_query/execute_range_query")
