"""The drift agent's own configuration model: the CLI maps driftwise settings into it once, at the edge.

Library code of the drift agent reads only this object (never the environment or driftwise.settings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, SecretStr

from agents.kit.bindings import Binding
from protocol.needs import Need
from protocol.tokens import Token

Mode = Literal["shadow", "advisory", "autonomous"]
AUDIT_CHECKPOINTS_FILE = "audit-checkpoints.jsonl"
"""The signed audit checkpoints, in the state folder beside (never inside) drift.sqlite."""
CONSOLE_PATH = "/console"
"""Where the drift agent serves the approvals console (agents/drift/console)."""


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArgoCDConfig(_Config):
    url: str
    token: SecretStr | None = None
    timeout_s: float = 2.0
    verify_tls: bool = True
    ca_bundle: Path | None = Field(default=None, description="PEM CAs for Argo CD's certificate; null = system CAs")


class AuditAnchorConfig(_Config):
    """Where the signed audit checkpoints go, and how often (agents/drift/audit_anchor.py)."""

    every: int = Field(default=50, ge=1, description="a checkpoint at least every this many records")
    log_url: str | None = Field(default=None, description="also POST each checkpoint to this HTTP log endpoint")
    log_token: SecretStr | None = None
    timeout_s: float = Field(default=2.0, gt=0)


class NotifyConfig(_Config):
    """Where messages for humans go (agents/drift/notify.py): a Slack-compatible incoming webhook."""

    webhook_url: SecretStr
    timeout_s: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    backoff_s: float = Field(default=0.5, gt=0)
    deadline_s: float = Field(default=30.0, gt=0)


class McpServerRef(_Config):
    """An MCP server by URL (streamable HTTP), or run as a stdio child (`command`)."""

    url: str = ""
    token: SecretStr | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    read_only_mode: bool = Field(default=False, description="declared to run in its read-only mode")
    open_timeout_s: float | None = Field(default=None, gt=0, description="opening its session may take this long")


class SpecialistRef(_Config):
    """A peer agent the drift agent delegates to, and which drifts it wants (kinds / JSON Pointer globs)."""

    url: str
    token: SecretStr
    kinds: list[str] = Field(default_factory=lambda: ["*"])
    paths: list[str] = Field(default_factory=lambda: ["*"])
    enabled: bool = True


class PolicyConfig(_Config):
    opa_url: str | None = None
    opa_path: str = "driftwise/guardrail/verdict"
    policy_dir: Path | None = None
    timeout_s: float = 1.0


class StateConfig(_Config):
    """Where the drift agent's state lives (agents.drift.state): None = SQLite files in state_dir."""

    dsn: SecretStr | None = None
    pool_size: int = Field(default=10, ge=2, description="PostgreSQL connections (the stores and checkpoints)")
    connect_timeout_s: float = Field(default=10.0, gt=0)
    probe_timeout_s: float = Field(default=2.0, gt=0, description="the readiness probe's bound (GET /readyz)")
    retention_days: float = Field(default=90.0, gt=0)
    retention_interval_s: float = Field(default=3600.0, gt=0)


class LlmConfig(_Config):
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    api_key: SecretStr | None = None
    timeout_s: float = 20.0
    max_prompt_chars: int = 60_000
    max_output_tokens: int = 1200
    structured_output: Literal["auto", "json_schema", "function_calling", "json_mode"] = "auto"
    prompt: Literal["compact", "full"] = "compact"


class ProxyConfig(_Config):
    """The authenticating proxy in front of the console (oauth2-proxy): whose identity headers are believed."""

    trusted: list[IPvAnyNetwork] = Field(default_factory=list, description="source addresses; [] = nobody")
    user_header: str = "X-Forwarded-User"
    email_header: str = "X-Forwarded-Email"
    groups_header: str = "X-Forwarded-Groups"


class ApproverRule(_Config):
    """Who may answer one project's decisions: any listed user (name or e-mail) or member of a listed group."""

    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)


class ConsoleConfig(_Config):
    """The approvals console's identity, session and links (validated in driftwise.settings.ConsoleSettings)."""

    public_url: str | None = Field(default=None, description="where people reach the drift agent; links to "
                                                             "<public_url>/console/... ; null = no links out")
    session_key: SecretStr | None = Field(default=None, description="signs console sessions; null = drawn at start")
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)
    approvers: dict[str, ApproverRule] = Field(default_factory=dict, description="project (or *) -> its approvers")

    def decision_url(self, event_id: str) -> str | None:
        """The console page of one decision as people open it (Argo CD's link, a chat message), if known."""
        if self.public_url is None:
            return None
        return f"{self.public_url.rstrip('/')}{CONSOLE_PATH}/decisions/{quote(event_id, safe='')}"


class DriftConfig(_Config):
    """Everything the drift agent process needs."""

    agent_id: str = "drift"
    host: str = "127.0.0.1"
    port: int = 8600
    public_url: str | None = Field(default=None, description="URL peers reach this agent at (card)")
    state_dir: Path
    private_key_path: Path
    trust_store_path: Path
    argocd: ArgoCDConfig
    mcp_servers: dict[str, McpServerRef] = Field(default_factory=dict)
    bindings: dict[Need, Binding] = Field(
        default_factory=dict, description="need -> binding (agents/kit/bindings.py); empty = Driftwise's own servers")
    mcp_call_timeout_s: float = 2.0
    specialists: dict[str, SpecialistRef] = Field(default_factory=dict)
    mode: Mode = "shadow"
    project_modes: dict[str, Mode] = Field(default_factory=dict)
    confidence_threshold: float = 0.80
    decision_deadline_s: float = 10.0
    delegate_timeout_s: float = 3.0
    max_token_lifetime_s: float = Field(default=600.0, gt=0, description="longest a token may still be valid")
    webhook_token: Token | None = None
    webhook_basic_user: str | None = None
    webhook_basic_password: SecretStr | None = None
    approvals_token: Token
    peer_tokens: dict[str, Token] = Field(
        default_factory=dict, description="peer id -> the bearer token(s) it uses on the A2A face"
    )
    audit: AuditAnchorConfig = Field(default_factory=AuditAnchorConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    max_body_bytes: int = 64 * 1024
    allow_ttl_h: float = 24.0
    reconcile_s: float = Field(default=60.0, gt=0, description="how long an unanswered sync is looked up in Argo CD")
    reread_interval_s: float = Field(default=60.0, gt=0, description="re-read of governed OutOfSync apps")
    outcome_horizon_h: float = Field(default=24.0, gt=0, description="a drift still there this long after its "
                                                                    "decision has persisted (allow: its expiry)")
    promotion_min_decisions: int = Field(default=50, ge=1)
    promotion_min_agreement: float = Field(default=0.95, ge=0, le=1)
    promotion_quiet_days: float = Field(default=14.0, ge=0)
    scheduler_interval_s: float = Field(default=0.5, gt=0, description="tick of deferred syncs and expiries")
    approval_timeout_h: float = Field(default=24.0, gt=0, description="longest wait for a human, then `expired`")
    notify: NotifyConfig | None = Field(default=None, description="messages for humans; None = none")
    console_url: str | None = Field(default=None, description="base URL of links to the console; None = base_url")
    sandbox_clock_url: str | None = None
    otlp_endpoint: str | None = Field(default=None, description="OTLP/HTTP traces endpoint; null = no export")
    service_namespace: str = "driftwise"
    max_concurrent_decisions: int = Field(default=16, ge=1)
    replica_id: str = Field(default="local", min_length=1, description="owner of this process's leases and claims")
    lease_ttl_s: float = Field(default=15.0, gt=0, description="a lease runs out this long after its last renewal")
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)

    @property
    def db_path(self) -> Path:
        return self.state_dir / "drift.sqlite"

    @property
    def base_url(self) -> str:
        """Where peers reach this agent (its card says so)."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def checkpoint_path(self) -> Path:
        return self.state_dir / "drift-graph.sqlite"

    @property
    def audit_checkpoints_path(self) -> Path:
        return self.state_dir / AUDIT_CHECKPOINTS_FILE

    def mode_for(self, project: str) -> Mode:
        return self.project_modes.get(project, self.mode)
