"""The one settings object every Driftwise process reads at its edge: a YAML file plus DRIFTWISE_* variables.

Precedence: explicit arguments > environment (`DRIFTWISE_DRIFT__THRESHOLD=0.9`, nested with `__`)
> secret files in /run/secrets named like those variables (Compose secrets) > the YAML file
(`--config FILE` or `DRIFTWISE_CONFIG`) > the embedded defaults, which run the whole system on
loopback against the sandbox. Tokens have no defaults: local runs draw them (driftwise/tokens.py).
Library code never reads the environment: a process calls `load_settings()` once and passes the
sections down.
"""

from __future__ import annotations

import ipaddress
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from protocol.needs import Need
from protocol.tokens import Token, token_ring

_config_file: ContextVar[Path | None] = ContextVar("driftwise_config_file", default=None)
SECRETS_DIR = Path("/run/secrets")
"""Where Docker and Compose mount secrets: a file named like a setting's variable
(`DRIFTWISE_DRIFT__APPROVALS_TOKEN`) holds that setting (compose.yaml mounts the tokens there)."""
_secrets_dir: ContextVar[Path] = ContextVar("driftwise_secrets_dir", default=SECRETS_DIR)

SANDBOX_PORT = 8680
"""The sandbox serves Argo CD on this port, then Kubernetes, Prometheus, Grafana, PagerDuty on the next four."""


class ConfigError(Exception):
    """A setting is missing or wrong; the message names it and how to set it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackendSettings(_Section):
    """How to reach one backend's HTTP API."""

    url: str = Field(description="base URL of the backend's HTTP API")
    token: SecretStr | None = Field(default=None, description="credential sent the way the backend expects it")
    timeout_s: float = Field(default=2.0, gt=0, le=60, description="per-call timeout")
    verify_tls: bool = Field(default=True, description="verify the backend's TLS certificate (false: trust any)")
    ca_bundle: Path | None = Field(
        default=None, description="PEM file of the CAs that sign the backend's certificate; null = the system's CAs"
    )

    @model_validator(mode="after")
    def _tls_consistent(self) -> BackendSettings:
        if self.ca_bundle is not None:
            if not self.verify_tls:
                raise ValueError("ca_bundle is set but verify_tls is false: keep verify_tls true to use the bundle")
            if not self.ca_bundle.is_file():
                raise ValueError(f"ca_bundle {self.ca_bundle} is not a file (give a PEM file of CA certificates)")
        return self


class PrometheusQueries(_Section):
    """The PromQL behind the workload tools; `{namespace}`, `{service}`, `{pod_regex}`, `{window}` are filled in."""

    request_rate: str = 'sum(rate(http_requests_total{{namespace="{namespace}",service="{service}"}}[{window}]))'
    error_rate: str = (
        'sum(rate(http_requests_total{{namespace="{namespace}",service="{service}",code=~"5.."}}[{window}]))'
    )
    memory_working_set: str = (
        'max by (pod, container) (container_memory_working_set_bytes{{namespace="{namespace}",'
        'pod=~"{pod_regex}",container!=""}})'
    )
    rate_window: str = Field(default="5m", description="the range of rate() in the workload queries")


class PrometheusSettings(BackendSettings):
    url: str = f"http://127.0.0.1:{SANDBOX_PORT + 2}"
    queries: PrometheusQueries = Field(default_factory=PrometheusQueries)


class ArgoCDSettings(BackendSettings):
    url: str = f"http://127.0.0.1:{SANDBOX_PORT}"
    token: SecretStr | None = SecretStr("sandbox-argocd-token")


class KubernetesSettings(BackendSettings):
    url: str = f"http://127.0.0.1:{SANDBOX_PORT + 1}"
    token: SecretStr | None = SecretStr("sandbox-kube-token")


class GrafanaSettings(BackendSettings):
    url: str = f"http://127.0.0.1:{SANDBOX_PORT + 3}"
    token: SecretStr | None = SecretStr("sandbox-grafana-token")


class PagerDutySettings(BackendSettings):
    url: str = f"http://127.0.0.1:{SANDBOX_PORT + 4}"
    token: SecretStr | None = SecretStr("sandbox-pagerduty-token")


class McpServerSettings(_Section):
    """One MCP server process: where it listens and the bearer token its HTTP transport requires."""

    port: int = Field(ge=1, le=65535, description="port of its streamable HTTP transport (/mcp)")
    token: Token | None = Field(
        default=None, description="bearer token(s) it requires; null = generated into the state folder by local runs"
    )
    endpoint: str | None = Field(
        default=None, description="the URL clients reach it at (containers, Kubernetes); null = http://HOST:PORT/mcp"
    )

    def url(self, host: str) -> str:
        return self.endpoint or f"http://{host}:{self.port}/mcp"


class ExternalMcpServerSettings(_Section):
    """An MCP server Driftwise does not start (one a team already runs): by URL, or run as a stdio child."""

    url: str | None = Field(default=None, description="its streamable HTTP endpoint, e.g. http://host:8080/mcp")
    token: SecretStr | None = Field(default=None, description="bearer token sent to `url`")
    command: str | None = Field(default=None, description="or: run it as this process's stdio child")
    args: list[str] = Field(default_factory=list, description="the command's arguments")
    env: dict[str, str] = Field(default_factory=dict, description="the child's environment (nothing else is passed "
                                "but PATH, HOME and the like): its backend URL and credential")
    startup_timeout_s: float = Field(default=30.0, gt=0, le=300, description="how long opening its session may "
                                     "take (a stdio child's start included) before the agent starts without it")
    read_only_mode: bool = Field(
        default=False, description="it runs in its own read-only mode (kubernetes-mcp-server --read-only, mcp-grafana "
        "--disable-write): accept its tools without readOnlyHint annotations. False: every bound tool must carry one")

    @model_validator(mode="after")
    def _one_transport(self) -> ExternalMcpServerSettings:
        if (self.url is None) == (self.command is None):
            raise ValueError("give exactly one of `url` (a server you run) or `command` (run as a stdio child)")
        return self


class ToolCallSettings(_Section):
    tool: str = Field(min_length=1, description="the tool's name on the bound server")
    arguments: dict[str, JsonValue] | None = Field(
        default=None, description="templates over the need's arguments ({namespace}, {start_ms}, ...); "
        "null = the need's own arguments")


class BindingSettings(_Section):
    """Which server answers one evidence need: a shipped `preset`, or your own `calls` and `adapter`."""

    server: str = Field(min_length=1, description="prometheus|grafana|pagerduty|kubernetes or a name in mcp.servers")
    preset: str | None = Field(default=None, description="a shipped binding: driftwise, kubernetes-mcp-server, "
                               "mcp-grafana, prometheus-mcp-server, pagerduty-mcp")
    calls: dict[str, ToolCallSettings] | None = Field(default=None, description="named tool calls (with `adapter`)")
    adapter: str | None = Field(default=None, description="reads the calls' results (agents/kit/adapters.py)")

    @model_validator(mode="after")
    def _preset_or_own(self) -> BindingSettings:
        own = self.calls is not None or self.adapter is not None
        if (self.preset is not None and own) or (self.preset is None and (self.calls is None or self.adapter is None)):
            raise ValueError("give either `preset`, or both `calls` and `adapter`")
        return self


class McpSettings(_Section):
    prometheus: McpServerSettings = McpServerSettings(port=8611)
    grafana: McpServerSettings = McpServerSettings(port=8612)
    pagerduty: McpServerSettings = McpServerSettings(port=8613)
    kubernetes: McpServerSettings = McpServerSettings(port=8614)
    call_timeout_s: float = Field(default=2.0, gt=0, le=60, description="deadline of one MCP tool call")
    servers: dict[str, ExternalMcpServerSettings] = Field(
        default_factory=dict, description="MCP servers Driftwise does not start, by name (the ones you already run)")
    use: dict[str, str] = Field(
        default_factory=dict, description="shipped preset -> server in `servers`: that server answers every need the "
        "preset covers, e.g. {kubernetes-mcp-server: k8s}")
    bindings: dict[Need, BindingSettings] = Field(
        default_factory=dict, description="need -> its binding, over `use` and the default (Driftwise's own servers)")

    @model_validator(mode="after")
    def _own_names_are_ours(self) -> McpSettings:
        taken = set(self.servers) & set(MCP_SERVER_NAMES)
        if taken:
            raise ValueError(f"mcp.servers names {', '.join(sorted(taken))}, which name Driftwise's own servers: "
                             "give yours another name")
        return self


MCP_SERVER_NAMES = ("prometheus", "grafana", "pagerduty", "kubernetes")
"""Driftwise's own MCP servers (the supervisor starts them; the default bindings name them)."""


class SpecialistSettings(_Section):
    """A specialist agent: its package, where it listens, and which drifts it wants.

    Adding a specialist is one of these lines: `module` names the package under agents/ whose
    `SPECIALIST` attribute is the class built on the kit.
    """

    module: str = Field(description="importable module exposing SPECIALIST (under agents/, or on PYTHONPATH)")
    port: int = Field(ge=1, le=65535, description="port of its A2A server")
    token: Token | None = Field(
        default=None, description="bearer token(s) callers must send; null = generated by local runs"
    )
    peer_tokens: dict[str, Token] = Field(
        default_factory=dict,
        description="peer id -> its bearer token(s) for this agent: the token names the peer, and answers are "
                    "addressed to it (aud); `token` stays Driftwise's own agents'",
    )
    kinds: list[str] = Field(default_factory=lambda: ["*"], description="resource kinds it wants; * = all")
    paths: list[str] = Field(
        default_factory=lambda: ["*"], description="changed JSON Pointers it wants, as fnmatch globs (* crosses /)"
    )
    enabled: bool = True
    options: dict[str, Any] = Field(
        default_factory=dict, description="the specialist's own options, e.g. rules_file or policy_file"
    )

    endpoint: str | None = Field(
        default=None, description="the URL peers reach it at, also in its card; null = http://HOST:PORT"
    )

    def url(self, host: str) -> str:
        return self.endpoint or f"http://{host}:{self.port}"


def _default_specialists() -> dict[str, SpecialistSettings]:
    return {
        "security": SpecialistSettings(module="agents.security", port=8601),
        "compliance": SpecialistSettings(module="agents.compliance", port=8602),
    }


class DriftAgentSettings(_Section):
    port: int = Field(default=8600, ge=1, le=65535, description="webhook, decisions/approvals API, A2A face")
    mode: Literal["shadow", "advisory", "autonomous"] = Field(
        default="shadow", description="shadow records only; advisory asks a human; autonomous acts in bounds"
    )
    project_modes: dict[str, Literal["shadow", "advisory", "autonomous"]] = Field(
        default_factory=dict, description="mode per Argo CD project, overriding `mode`"
    )
    confidence_threshold: float = Field(default=0.80, ge=0, le=1, description="below it a human must approve")
    decision_deadline_s: float = Field(default=10.0, gt=0, le=1800, description=(
        "a whole decision's deadline; with a slow local model: above twice llm.timeout_s, below the specialists' "
        "token lifetime (600 s)"))
    delegate_timeout_s: float = Field(default=3.0, gt=0, le=120, description="deadline of one specialist's answer")
    max_token_lifetime_s: float = Field(
        default=600.0, gt=0, le=86_400,
        description="a specialist token valid for longer than this (its `exp`) is refused: lifetime_too_long",
    )
    webhook_token: Token | None = Field(
        default=None, description="bearer token(s) Argo CD's webhook service sends; null = generated by local runs"
    )
    webhook_basic_user: str | None = Field(default=None, description="or basic auth: user")
    webhook_basic_password: SecretStr | None = Field(default=None, description="or basic auth: password")
    approvals_token: Token | None = Field(
        default=None, description="bearer token(s) of the decisions/approvals API; null = generated by local runs"
    )
    peer_tokens: dict[str, Token] = Field(
        default_factory=dict,
        description="peer id -> its bearer token(s) on the drift agent's A2A face (the token names the peer); "
                    "none = the face refuses every caller",
    )
    audit_checkpoint_every: int = Field(
        default=50, ge=1, le=100_000,
        description="sign and anchor the audit head at least every this many records (and on shutdown)",
    )
    audit_log_url: str | None = Field(
        default=None, description="also POST each signed audit checkpoint here (an HTTP log endpoint); "
                                  "null = only the file <state_dir>/audit-checkpoints.jsonl",
    )
    audit_log_token: SecretStr | None = Field(default=None, description="bearer token sent to audit_log_url")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="larger webhook bodies get 413")
    allow_ttl_h: float = Field(default=24.0, gt=0, description="how long an allowed drift stays allowed")
    reconcile_s: float = Field(
        default=60.0, gt=0, le=3600,
        description="how long a sync Argo CD did not answer is looked up in its operation state before the "
                    "decision is left in flight for the next start's recovery",
    )
    scheduler_interval_s: float = Field(
        default=0.5, gt=0, le=60, description="tick of deferred syncs and allowance expiries on Driftwise's clock"
    )
    approval_timeout_h: float = Field(
        default=24.0, gt=0, le=24 * 90,
        description="how long a decision may wait for a human (a reminder at half-time when notify.webhook_url is "
                    "set); then it ends `expired`, nothing done, and a drift that persists is decided anew",
    )
    reread_interval_s: float = Field(
        default=60.0, gt=0, description="re-read governed apps that stay OutOfSync this often"
    )
    outcome_horizon_h: float = Field(
        default=24.0, gt=0, le=24 * 90,
        description="outcomes: a drift still there this long after its decision has persisted "
                    "(an allow's horizon is its allowance's expiry; a defer's at least its window)",
    )
    promotion_min_decisions: int = Field(
        default=50, ge=1, description="promotion readiness: judged drifts wanted in the current mode (no escalations)"
    )
    promotion_min_agreement: float = Field(default=0.95, ge=0, le=1, description="promotion readiness: agreement")
    promotion_quiet_days: float = Field(
        default=14.0, ge=0, description="promotion readiness: no possibly unsafe disagreement in this many days"
    )
    replica_id: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$",
        description="this replica's id, the owner of its decision leases and job claims; unique per live process "
                    "sharing state.dsn; null = the host name (a pod's name on Kubernetes)",
    )
    lease_ttl_s: float = Field(
        default=15.0, ge=1, le=600,
        description="a decision's lease (and a job's claim) runs out this long after its last renewal (every "
                    "third of it); then any replica takes the decision over from its checkpoint",
    )
    sandbox_clock_url: str | None = Field(
        default=f"http://127.0.0.1:{SANDBOX_PORT}/sandbox/clock",
        description="sandbox only: take 'now' from here; null in production (system clock)",
    )


class StateSettings(_Section):
    dsn: SecretStr | None = Field(
        default=None, description="postgresql://user:password@host:port/db puts every store of the drift agent "
                                  "there (replicas share it); null = SQLite files in state_dir")
    pool_size: int = Field(default=10, ge=2, le=1000, description="PostgreSQL connections per drift agent")
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300, description="waiting for PostgreSQL at start-up")
    probe_timeout_s: float = Field(
        default=2.0, gt=0, le=30, description="readiness (GET /readyz): the bound on one round trip to the state "
                                              "database, connecting included; keep it below the probe's timeout")
    retention_days: float = Field(
        default=90.0, gt=0, description="closed decisions, their threads' checkpoints, outcomes and outbox rows "
                                        "older than this are pruned (the audit chain never is)")
    retention_interval_s: float = Field(default=3600.0, gt=0, description="how often the retention job runs")

    @field_validator("dsn")
    @classmethod
    def _postgres_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("state.dsn must be a postgresql:// URL (postgresql://user:password@host:5432/db), "
                             "or null for the SQLite files in state_dir")
        return value


class PolicySettings(_Section):
    opa_url: str | None = Field(default=None, description="an OPA server; null = in-process regopy")
    opa_path: str = Field(default="driftwise/guardrail/verdict", description="the decision's path under /v1/data")
    policy_dir: Path | None = Field(default=None, description="Rego files; null = the packaged policies/")
    timeout_s: float = Field(default=1.0, gt=0, le=30, description="OPA server call timeout (then fail closed)")


class LlmSettings(_Section):
    base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint; null = rules reasoner")
    model: str = Field(default="gpt-4o-mini", description="model (or Azure deployment) name")
    api_key: SecretStr | None = Field(default=None, description="API key of the endpoint")
    timeout_s: float = Field(default=20.0, gt=0, le=1800, description=(
        "one call's bound, then the rules reasoner decides; a slow local model needs more, and "
        "drift.decision_deadline_s above twice this (the one repair call)"))
    max_prompt_chars: int = Field(default=60_000, ge=1000, description="the prompt is cut to this size")
    max_output_tokens: int = Field(default=1200, ge=100, description="bound of the model's answer")
    structured_output: Literal["auto", "json_schema", "function_calling", "json_mode"] = Field(
        default="auto", description=(
            "how the answer's shape is asked: a JSON schema response_format, a forced tool call, or JSON mode with "
            "the schema in the prompt; auto tries them in that order once at start-up and keeps the first that works"))
    prompt: Literal["compact", "full"] = Field(default="compact", description=(
        "the data block: compact (changed paths, evidence, specialists: what the rules decide on) or full "
        "(whole manifests too; for large-context models and the scripted endpoint's rules-like script)"))


def _is_http_url(value: str) -> bool:
    try:
        TypeAdapter(AnyHttpUrl).validate_python(value)
    except ValidationError:
        return False
    return True


class NotifySettings(_Section):
    """A message where people are when a decision needs a human: a Slack-compatible incoming webhook."""

    webhook_url: SecretStr | None = Field(
        default=None, description="incoming-webhook URL (Slack, or anything that takes its JSON: text + blocks); "
                                  "a secret, never logged; null = no messages")
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="one POST's bound")
    max_attempts: int = Field(default=5, ge=1, le=20, description="POSTs of one message before it is given up")
    backoff_s: float = Field(default=0.5, gt=0, le=60, description="wait before the first retry, doubled each time")
    deadline_s: float = Field(
        default=30.0, gt=0, le=600,
        description="the bound of one message's delivery, retries included; then it is given up, logged, counted")

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _is_http_url(value.get_secret_value()):
            # the message never quotes the value: it is a secret
            raise ValueError("notify.webhook_url must be an http(s) URL (https://hooks.slack.com/services/...), "
                             "or null for no messages")
        return value


class TelemetrySettings(_Section):
    otlp_endpoint: str | None = Field(default=None, description="OTLP/HTTP collector URL; null = no export")
    service_namespace: str = Field(default="driftwise", description="service.namespace of every process's spans")


_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_PROJECT = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
"""An Argo CD project's name: a Kubernetes object name (DNS-1123 subdomain)."""


class ProxySettings(_Section):
    """An authenticating proxy in front of the console (oauth2-proxy: `--reverse-proxy --set-xauthrequest` or
    `--pass-user-headers`): its identity headers are believed only from `trusted_cidrs`."""

    trusted_cidrs: list[str] = Field(
        default_factory=list, description="addresses the proxy connects from, e.g. [127.0.0.1/32] for a sidecar; "
        "[] = trust nobody's headers (the console's own sign-in with the approvals token). Set: the identity "
        "headers are required, and a request carrying them from any other address is refused (403)")
    user_header: str = Field(default="X-Forwarded-User", description="the header naming the signed-in user")
    email_header: str = Field(default="X-Forwarded-Email", description="the header with the user's e-mail")
    groups_header: str = Field(default="X-Forwarded-Groups", description="the header with the user's groups, "
                               "comma-separated")

    @field_validator("trusted_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=True)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not a network in CIDR notation ({exc}): give e.g. 127.0.0.1/32 or "
                                 "10.0.0.0/8") from exc
        return value

    @model_validator(mode="after")
    def _header_names(self) -> ProxySettings:
        names = [self.user_header, self.email_header, self.groups_header]
        for name in names:
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not an HTTP header name (letters, digits and -, e.g. X-Forwarded-User)")
        if len({n.lower() for n in names}) < len(names):
            raise ValueError("user_header, email_header and groups_header must be three different headers")
        return self


class ApproverRuleSettings(_Section):
    """Who may answer one project's decisions: a listed user (the proxy's user or e-mail, or the name given
    with the approvals token; compared case-insensitively) or a member of a listed group (the proxy's)."""

    users: list[str] = Field(default_factory=list, description="user names or e-mail addresses")
    groups: list[str] = Field(default_factory=list, description="groups as the proxy sends them")

    @model_validator(mode="after")
    def _names(self) -> ApproverRuleSettings:
        if not self.users and not self.groups:
            raise ValueError("names no user and no group, so nobody could answer the project's decisions: list "
                             "`users` or `groups`, or remove the project to let every approver answer")
        for kind, names in (("users", self.users), ("groups", self.groups)):
            for name in names:
                if not name.strip() or name != name.strip() or not name.isprintable():
                    raise ValueError(f"{kind} has {name!r}: give names without surrounding spaces or "
                                     "control characters")
        if any("," in g for g in self.groups):
            raise ValueError("a group name with a comma can never match: the proxy sends groups comma-separated")
        return self


class ConsoleSettings(_Section):
    """The approvals console (served by the drift agent under /console): identities, sessions, links to it."""

    public_url: str | None = Field(
        default=None, description="where people reach the drift agent (through the proxy), e.g. "
        "https://driftwise.example.com (the console is <public_url>/console): Argo CD's link to each decision and "
        "the links in messages; null = no link in Argo CD, messages link http://HOST:drift.port")
    session_key: SecretStr | None = Field(
        default=None, description="signs the console's session cookies (32+ characters); null = local runs draw "
        "one into the state folder, else each start draws one (a restart signs everyone out). Replicas "
        "(state.dsn) must share one: required then")
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    approvers: dict[str, ApproverRuleSettings] = Field(
        default_factory=dict, description="Argo CD project (or * for every project not listed) -> who may approve "
        "its decisions, in the console and through the API; a project not listed: anyone who may sign in")

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if not _is_http_url(value) or parts.query or parts.fragment:
            raise ValueError("console.public_url must be an http(s) URL without query or fragment "
                             "(https://driftwise.example.com), or null")
        return value.rstrip("/")

    @field_validator("session_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        key = value.get_secret_value().strip()
        if len(key) < 32:
            raise ValueError("is shorter than 32 characters: draw one with "
                             "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`")
        return SecretStr(key)

    @field_validator("approvers")
    @classmethod
    def _projects(cls, value: dict[str, ApproverRuleSettings]) -> dict[str, ApproverRuleSettings]:
        for project in value:
            if project != "*" and not _PROJECT.match(project):
                raise ValueError(f"{project!r} is not an Argo CD project name (lower-case letters, digits, - and .) "
                                 "nor * (every project not listed)")
        return value


class Settings(BaseSettings):
    """All of Driftwise's configuration; each process uses the sections it needs."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTWISE_",
        env_nested_delimiter="__",
        env_parse_none_str="null",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    host: str = Field(default="127.0.0.1", description="address every process binds and peers are reached at")
    state_dir: Path = Field(default=Path(".driftwise"), description="SQLite state, keys and trust store")
    state: StateSettings = StateSettings()
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    argocd: ArgoCDSettings = ArgoCDSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()
    prometheus: PrometheusSettings = PrometheusSettings()
    grafana: GrafanaSettings = GrafanaSettings()
    pagerduty: PagerDutySettings = PagerDutySettings()
    mcp: McpSettings = McpSettings()
    specialists: dict[str, SpecialistSettings] = _default_specialists()
    drift: DriftAgentSettings = DriftAgentSettings()
    policy: PolicySettings = PolicySettings()
    llm: LlmSettings = LlmSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    notify: NotifySettings = NotifySettings()
    console: ConsoleSettings = ConsoleSettings()

    @field_validator("specialists", mode="before")
    @classmethod
    def _keep_builtin_specialists(cls, value: Any) -> Any:
        """A file or env that names specialists extends the built-in ones (disable one with enabled: false)."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {k: v.model_dump() for k, v in _default_specialists().items()}
        for name, entry in value.items():
            if isinstance(entry, SpecialistSettings):
                entry = entry.model_dump()
            base = merged.get(name)
            merged[name] = {**base, **entry} if isinstance(base, dict) and isinstance(entry, dict) else entry
        return merged

    @model_validator(mode="after")
    def _one_token_per_role(self) -> Settings:
        self.check_one_token_per_role()
        return self

    def check_one_token_per_role(self) -> None:
        """A token shared by two roles would let one act as the other (a peer approving, say)."""
        roles: list[tuple[str, Token | None]] = [
            ("drift.webhook_token", self.drift.webhook_token), ("drift.approvals_token", self.drift.approvals_token),
            *((f"drift.peer_tokens.{p}", t) for p, t in self.drift.peer_tokens.items()),
            *((f"specialists.{n}.token", s.token) for n, s in self.specialists.items()),
            *((f"specialists.{n}.peer_tokens.{p}", t) for n, s in self.specialists.items()
              for p, t in s.peer_tokens.items()),
            *((f"mcp.{n}.token", getattr(self.mcp, n).token) for n in ("prometheus", "grafana", "pagerduty",
                                                                       "kubernetes")),
            ("console.session_key", self.console.session_key),
        ]
        owner: dict[str, str] = {}
        for role, value in roles:
            for secret in token_ring(value):
                first = owner.setdefault(secret.get_secret_value(), role)
                if first != role:
                    raise ValueError(f"{role} has the same token as {first}: give every role its own token "
                                     "(`driftwise up` generates them; deploy/secrets/generate.sh draws them)")

    @property
    def tokens_dir(self) -> Path:
        return self.state_dir / "tokens"

    @property
    def keys_dir(self) -> Path:
        return self.state_dir / "keys"

    @property
    def trust_store_path(self) -> Path:
        return self.state_dir / "keys" / "trust.json"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        secrets = _secrets_dir.get()
        if secrets.is_dir():
            sources.append(NestedSecretsSettingsSource(file_secret_settings, secrets_dir=secrets,
                                                       secrets_nested_delimiter="__", secrets_prefix="DRIFTWISE_"))
        path = _config_file.get()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def require_token(setting: str, value: Token | None) -> list[str]:
    """The revealed tokens of a role a process cannot run without; ConfigError naming the setting if unset."""
    from protocol.tokens import accepted

    tokens = accepted(value)
    if not tokens:
        env = "DRIFTWISE_" + setting.upper().replace(".", "__")
        raise ConfigError(f"setting `{setting}` (env {env}) is not set: give this role its own token "
                          "(`driftwise up` draws every token into <state_dir>/tokens/ on first run)")
    return tokens


def _setting_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def load_settings(config_file: Path | None = None, *, secrets_dir: Path | None = None, **overrides: Any) -> Settings:
    """Read settings once, at a process edge (secret files from `secrets_dir`, default SECRETS_DIR).
    Raises ConfigError with a one-line, named message."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist (pass an existing YAML file to --config)")
    token = _config_file.set(config_file)
    secrets_token = _secrets_dir.set(secrets_dir or SECRETS_DIR)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = _setting_name(err["loc"])
        where = f" in {config_file}" if config_file else ""
        if not name:  # a rule across settings: its message names them
            raise ConfigError(f"settings{where}: {err['msg']}") from exc
        env = "DRIFTWISE_" + name.upper().replace(".", "__")
        raise ConfigError(f"setting `{name}`{where} (env {env}): {err['msg']}") from exc
    except Exception as exc:  # a YAML syntax error surfaces from the source as a plain exception
        raise ConfigError(f"config file {config_file} cannot be read: {exc}") from exc
    finally:
        _config_file.reset(token)
        _secrets_dir.reset(secrets_token)
