"""`driftwise agent drift`: map driftwise Settings into the drift agent's own config and serve it."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from driftwise.settings import Settings

if TYPE_CHECKING:
    from agents.drift.config import DriftConfig


def drift_config(settings: Settings, port: int | None = None) -> DriftConfig:
    from agents.drift.config import (
        ApproverRule,
        ArgoCDConfig,
        AuditAnchorConfig,
        ConsoleConfig,
        DriftConfig,
        LlmConfig,
        McpServerRef,
        NotifyConfig,
        PolicyConfig,
        ProxyConfig,
        SpecialistRef,
        StateConfig,
    )
    from driftwise.cli.bindings import mcp_wiring
    from driftwise.settings import ConfigError, require_token

    d = settings.drift
    host = settings.host
    mcp = settings.mcp
    if d.webhook_token is None and not (d.webhook_basic_user and d.webhook_basic_password):
        require_token("drift.webhook_token", None)  # no way in for Argo CD: say which setting is missing
    require_token("drift.approvals_token", d.approvals_token)
    servers, bindings = mcp_wiring(settings)
    console = settings.console
    if settings.state.dsn is not None and console.session_key is None:
        raise ConfigError("setting `console.session_key` (env DRIFTWISE_CONSOLE__SESSION_KEY) is not set, but "
                          "state.dsn is: replicas share one PostgreSQL, and a console session one replica signed "
                          "would be refused by the others. Give every replica the same key (a Secret: "
                          "deploy/secrets/generate.sh draws one)")
    return DriftConfig(
        agent_id="drift",
        host=host,
        port=port or d.port,
        state_dir=settings.state_dir,
        private_key_path=settings.keys_dir / "drift.private.jwk.json",
        trust_store_path=settings.trust_store_path,
        argocd=ArgoCDConfig(url=settings.argocd.url, token=settings.argocd.token,
                            timeout_s=settings.argocd.timeout_s, verify_tls=settings.argocd.verify_tls,
                            ca_bundle=settings.argocd.ca_bundle),
        mcp_servers={name: McpServerRef(**fields) for name, fields in servers.items()},
        bindings=bindings,
        mcp_call_timeout_s=mcp.call_timeout_s,
        specialists={
            name: SpecialistRef(url=s.url(host), token=require_token(f"specialists.{name}.token", s.token)[0],
                                kinds=s.kinds, paths=s.paths, enabled=s.enabled)
            for name, s in settings.specialists.items() if s.enabled
        },
        mode=d.mode,
        project_modes=d.project_modes,
        confidence_threshold=d.confidence_threshold,
        decision_deadline_s=d.decision_deadline_s,
        delegate_timeout_s=d.delegate_timeout_s,
        max_token_lifetime_s=d.max_token_lifetime_s,
        webhook_token=d.webhook_token,
        webhook_basic_user=d.webhook_basic_user,
        webhook_basic_password=d.webhook_basic_password,
        approvals_token=d.approvals_token,
        peer_tokens=d.peer_tokens,
        state=StateConfig(**settings.state.model_dump()),
        audit=AuditAnchorConfig(every=d.audit_checkpoint_every, log_url=d.audit_log_url, log_token=d.audit_log_token),
        max_body_bytes=d.max_body_bytes,
        allow_ttl_h=d.allow_ttl_h,
        reconcile_s=d.reconcile_s,
        reread_interval_s=d.reread_interval_s,
        outcome_horizon_h=d.outcome_horizon_h,
        promotion_min_decisions=d.promotion_min_decisions,
        promotion_min_agreement=d.promotion_min_agreement,
        promotion_quiet_days=d.promotion_quiet_days,
        scheduler_interval_s=d.scheduler_interval_s,
        approval_timeout_h=d.approval_timeout_h,
        notify=NotifyConfig(**settings.notify.model_dump()) if settings.notify.webhook_url is not None else None,
        console_url=settings.console.public_url,
        replica_id=d.replica_id or socket.gethostname(),
        lease_ttl_s=d.lease_ttl_s,
        sandbox_clock_url=d.sandbox_clock_url,
        otlp_endpoint=settings.telemetry.otlp_endpoint,
        service_namespace=settings.telemetry.service_namespace,
        policy=PolicyConfig(opa_url=settings.policy.opa_url, opa_path=settings.policy.opa_path,
                            policy_dir=settings.policy.policy_dir, timeout_s=settings.policy.timeout_s),
        llm=LlmConfig(**settings.llm.model_dump()),
        console=ConsoleConfig(
            public_url=console.public_url, session_key=console.session_key,
            proxy=ProxyConfig(trusted=console.proxy.trusted_cidrs, user_header=console.proxy.user_header,
                              email_header=console.proxy.email_header, groups_header=console.proxy.groups_header),
            approvers={project: ApproverRule(users=rule.users, groups=rule.groups)
                       for project, rule in console.approvers.items()}),
    )


def run_drift_agent(settings: Settings, port: int | None = None) -> None:
    """Serve the drift agent until stopped (called by `driftwise agent drift`)."""
    from agents.drift.app import serve
    from agents.drift.errors import StoreError
    from driftwise.cli import fail, serve_forever, setup_logging
    from driftwise.settings import ConfigError
    from protocol.errors import KeyStoreError

    setup_logging(settings.log_level, "drift")
    try:
        config = drift_config(settings, port)
    except ConfigError as exc:
        fail(f"configuration error: {exc}", 2)
    for path, what in ((config.private_key_path, "signing key"), (config.trust_store_path, "trust store")):
        if not path.exists():
            fail(f"drift agent {what} {path} does not exist: run `driftwise keys generate --agent drift "
                 f"--out {settings.keys_dir} --trust {settings.trust_store_path}`")
    from agents.kit.bindings import BindingError

    try:
        serve_forever(serve(config))
    except (KeyStoreError, StoreError) as exc:  # a key, or the state database (unreachable, schema too new)
        fail(str(exc))
    except BindingError as exc:  # a missing or mis-bound tool: start-up stops here, naming the binding
        fail(f"MCP bindings refused: {exc}", 2)
    except KeyboardInterrupt:
        pass
