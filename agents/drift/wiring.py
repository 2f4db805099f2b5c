"""Builds the graph's dependencies from the drift agent's config: the one place that names implementations."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from agents.drift.argocd_client import ArgoCDClient
from agents.drift.clock import Clock
from agents.drift.config import DriftConfig
from agents.drift.graph import GraphDeps
from agents.drift.observe import Observer
from protocol.signing import Signer, TrustStore, Verifier, load_private_key

log = logging.getLogger(__name__)


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def signing(config: DriftConfig) -> tuple[Signer, TrustStore]:
    key = load_private_key(config.private_key_path)
    trust = TrustStore.load(config.trust_store_path)
    return Signer(agent=config.agent_id, key=key), trust


def reasoner_for(config: DriftConfig) -> Any:
    from agents.drift.reasoning.rules import RulesReasoner

    if not config.llm.base_url:
        return RulesReasoner()
    from agents.drift.reasoning.llm import LlmReasoner

    return LlmReasoner(config.llm, fallback=RulesReasoner())


def guardrail_for(config: DriftConfig, trust: TrustStore, http: httpx.AsyncClient) -> Any:
    from agents.drift.guardrail import Guardrail, OpaRestEngine, RegoEngine, default_policy_dir

    engine: Any
    if config.policy.opa_url:
        engine = OpaRestEngine(config.policy.opa_url, config.policy.opa_path, http, config.policy.timeout_s)
    else:
        engine = RegoEngine(config.policy.policy_dir or default_policy_dir())
    # No replay cache: the same specialist token is checked by delegate and again here, and a decision
    # resumed after a crash checks it once more; event binding and expiry still bound its use.
    verifier = Verifier(trust=trust, audience=config.agent_id, replay=None)
    return Guardrail(verifier, engine, config.confidence_threshold)


async def build_deps(config: DriftConfig, http: httpx.AsyncClient) -> tuple[GraphDeps, Any]:
    """The graph's dependencies and the MCP pool (kept open; the caller closes it)."""
    from agents.drift.evidence_plan import plan_evidence
    from agents.kit.client import PeerClient
    from agents.kit.mcp_pool import McpEndpoint, McpPool
    from agents.kit.routing import wants

    signer, trust = signing(config)
    pool = None
    if config.mcp_servers:
        pool = McpPool(
            {n: McpEndpoint(url=s.url, token=_secret(s.token)) for n, s in config.mcp_servers.items()},
            call_timeout_s=config.mcp_call_timeout_s,
        )
        try:
            await pool.start()
        except Exception:  # a server down at start-up shows up as evidence errors, never as a dead agent
            log.warning("MCP pool did not fully start; tool calls will report the failure", exc_info=True)
    clock = Clock(http, config.sandbox_clock_url)
    argocd = ArgoCDClient(http, config.argocd.url, _secret(config.argocd.token), config.argocd.timeout_s)
    deps = GraphDeps(
        config=config,
        clock=clock,
        observer=Observer(argocd, pool, namespace_timeout_s=config.mcp_call_timeout_s),
        tools=pool,
        plan=plan_evidence,
        peers=PeerClient(http),
        wants=wants,
        reasoner=reasoner_for(config),
        signer=signer,
        verifier=Verifier(trust=trust, audience=config.agent_id, replay=None),
        guardrail=guardrail_for(config, trust, http),
    )
    return deps, pool
