"""Builds the graph's dependencies from the drift agent's config: the one place that names implementations."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from agents.drift.argocd_client import ArgoCDClient
from agents.drift.clock import Clock
from agents.drift.config import DriftConfig
from agents.drift.observe import Observer
from agents.drift.steps import GraphDeps
from agents.drift.steps.deps import ReplayGuard
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


def verifier_for(config: DriftConfig, trust: TrustStore) -> Verifier:
    """Pure verification (signature, signer, audience, event, expiry, lifetime); using a token once is
    the replay cache's separate step, in delegate."""
    return Verifier(trust=trust, audience=config.agent_id, max_lifetime_s=config.max_token_lifetime_s)


def guardrail_for(config: DriftConfig, trust: TrustStore, http: httpx.AsyncClient) -> Any:
    from agents.drift.guardrail import Guardrail, OpaRestEngine, RegoEngine, default_policy_dir

    engine: Any
    if config.policy.opa_url:
        engine = TracedEngine(OpaRestEngine(config.policy.opa_url, config.policy.opa_path, http,
                                            config.policy.timeout_s), "rest")
    else:
        engine = TracedEngine(RegoEngine(config.policy.policy_dir or default_policy_dir()), "rego")
    # The guardrail re-checks each carried token (DESIGN step 7) without using it: delegate did, once.
    return Guardrail(verifier_for(config, trust), engine, config.confidence_threshold)


class TracedEngine:
    """A span around each policy evaluation (in-process Rego has no HTTP hop to show it)."""

    def __init__(self, engine: Any, kind: str) -> None:
        self._engine = engine
        self._kind = kind

    async def evaluate(self, input: dict[str, Any]) -> dict[str, Any]:
        from opentelemetry import trace

        with trace.get_tracer("driftwise.drift").start_as_current_span("opa.evaluate",
                                                                       attributes={"opa.engine": self._kind}):
            return await self._engine.evaluate(input)


def applier_for(config: DriftConfig, http: httpx.AsyncClient, argocd: ArgoCDClient, store: Any) -> Any:
    """The Applier over the Argo CD API; `store` is an opened agents.drift.acting.store.ActingStore."""
    from datetime import timedelta

    from agents.drift.acting.applier import Applier
    from agents.drift.acting.argocd_writes import ArgoCDWriter
    from agents.drift.acting.errors import ApplyError
    from agents.drift.errors import ObserveError

    async def get_application(name: str, app_namespace: str) -> dict[str, Any]:
        try:
            return await argocd.application_json(name, app_namespace or None)
        except ObserveError as exc:
            raise ApplyError(exc.kind, str(exc)) from exc

    writer = ArgoCDWriter(http, config.argocd.url, _secret(config.argocd.token), config.argocd.timeout_s)
    # a job's claim is as long as a decision's lease: a claimer that died frees its jobs as it frees its decisions
    return Applier(writer, get_application, store, timedelta(hours=config.allow_ttl_h), reconcile_s=config.reconcile_s,
                   decision_url=config.console.decision_url, claimer=config.replica_id, claim_s=config.lease_ttl_s)


async def build_deps(
    config: DriftConfig, http: httpx.AsyncClient, replay: ReplayGuard, acting_store: Any = None
) -> tuple[GraphDeps, Any]:
    """The graph's dependencies and the MCP pool (kept open; the caller closes it).

    `replay` is the opened agents.drift.replay.ReplayStore. With an (opened) ActingStore the graph acts
    on its verdicts; without one it only decides.
    """
    from agents.drift.evidence_plan import plan_evidence
    from agents.kit.bindings import BoundSources, resolve_bindings
    from agents.kit.client import PeerClient
    from agents.kit.mcp_pool import McpEndpoint, McpPool
    from agents.kit.routing import wants

    signer, trust = signing(config)
    pool = None
    sources = None
    if config.mcp_servers:
        pool = McpPool(
            {n: McpEndpoint(url=s.url, token=_secret(s.token), command=s.command, args=tuple(s.args), env=s.env,
                            open_timeout_s=s.open_timeout_s)
             for n, s in config.mcp_servers.items()},
            call_timeout_s=config.mcp_call_timeout_s,
        )
        try:
            await pool.start()
        except Exception:  # a server down at start-up shows up as evidence errors, never as a dead agent
            log.warning("MCP pool did not fully start; tool calls will report the failure", exc_info=True)
        sources = BoundSources(pool, config.bindings or resolve_bindings({}, {}, set(config.mcp_servers)),
                               frozenset(n for n, s in config.mcp_servers.items() if s.read_only_mode))
        try:
            await sources.check()  # a missing or mis-bound tool stops start-up, naming the binding
        except BaseException:
            await pool.close()
            raise
    clock = Clock(http, config.sandbox_clock_url)
    argocd = ArgoCDClient(http, config.argocd.url, _secret(config.argocd.token), config.argocd.timeout_s)
    deps = GraphDeps(
        config=config,
        clock=clock,
        observer=Observer(argocd),
        tools=sources,
        plan=plan_evidence,
        peers=PeerClient(http),
        wants=wants,
        reasoner=reasoner_for(config),
        signer=signer,
        verifier=verifier_for(config, trust),
        replay=replay,
        guardrail=guardrail_for(config, trust, http),
        applier=applier_for(config, http, argocd, acting_store) if acting_store is not None else None,
    )
    return deps, pool
