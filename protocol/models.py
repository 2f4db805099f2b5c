"""The contracts between Driftwise processes: every message that crosses a process is one of these.

Every model rejects unknown fields, and every top-level message carries `schema_version`, so
that both sides of a hop validate the same shape and a version skew fails loudly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic.alias_generators import to_camel

from protocol.context import ToolResult

SCHEMA_VERSION: Literal["1"] = "1"
REDACTED = "<redacted>"
"""What a Secret value is replaced with before any model holds it."""


class StrictModel(BaseModel):
    """Base of every protocol model: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Versioned(StrictModel):
    """A top-level message: carries the schema version it was written against."""

    schema_version: Literal["1"] = SCHEMA_VERSION


class Action(StrEnum):
    """What may be done about a drift. There is deliberately no delete."""

    ALLOW = "allow"
    DEFER = "defer"
    ENFORCE = "enforce"
    ESCALATE = "escalate"


# --- intake ------------------------------------------------------------------------------------


# The names Argo CD and Kubernetes accept (k8s.io/apimachinery validation): an Application or
# AppProject name is a DNS-1123 subdomain, a namespace a DNS-1123 label. ASCII only, so no control,
# bidi or other invisible character can pass any of these fields.
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = rf"^{_LABEL}$"
DNS1123_SUBDOMAIN = rf"^{_LABEL}(\.{_LABEL})*$"
REVISION_CHARS = r"^[A-Za-z0-9._/+-]*$"
"""A git SHA, a tag or branch name (git check-ref-format, ASCII), a Helm chart version, or empty."""
ARGOCD_URL = r"^(https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+)?$"
"""RFC 3986's characters: no quote, backslash, brace or space can pass."""
TRIGGER_NAME = r"^[-._a-zA-Z0-9]+$"
"""A ConfigMap key, as Argo CD notification triggers are named (trigger.<name>)."""


def _named(pattern: str, what: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{_shown(value)} is not {what}")
        return value

    return check


def _shown(value: str) -> str:
    """A value quoted for an error message, every non-printable or non-ASCII character escaped."""
    text = value if len(value) <= 80 else value[:80] + "..."
    return ascii(text)


def _revision(value: str) -> str:
    """git check-ref-format's rules over an ASCII alphabet; a SHA, `HEAD` and `1.2.3+build` pass."""
    if not re.fullmatch(REVISION_CHARS, value):
        raise ValueError(f"{_shown(value)} is not a git SHA, tag, branch or chart version "
                         "(letters, digits and . _ / + - only)")
    if value and (".." in value or "//" in value or value.startswith(("/", ".", "-")) or value.endswith(("/", "."))
                  or value.endswith(".lock") or "/." in value):
        raise ValueError(f"{_shown(value)} is not a valid git ref name (git check-ref-format)")
    return value


def _named_field(pattern: str, what: str, **field: Any) -> Any:
    """A string field checked against `pattern` with a message saying what it must be; the pattern goes
    into the JSON Schema (and so the OpenAPI document) too."""
    return Annotated[str, AfterValidator(_named(pattern, what)),
                     Field(json_schema_extra={"pattern": pattern}, **field)]


AppName = _named_field(DNS1123_SUBDOMAIN, "an Argo CD application name (a DNS-1123 subdomain: lower-case "
                       "letters, digits, '-' and '.', starting and ending with a letter or digit)",
                       min_length=1, max_length=253)
NamespaceName = _named_field(DNS1123_LABEL, "a Kubernetes namespace (a DNS-1123 label: lower-case letters, "
                             "digits and '-', starting and ending with a letter or digit)",
                             min_length=1, max_length=63)
ProjectName = _named_field(DNS1123_SUBDOMAIN, "an Argo CD project name (a DNS-1123 subdomain)",
                           min_length=1, max_length=253)
Revision = Annotated[str, AfterValidator(_revision),
                     Field(max_length=255, json_schema_extra={"pattern": REVISION_CHARS})]
_BIDI = r"\u200b-\u200f\u202a-\u202e\u2066-\u2069"
PERSON_TEXT = rf"^[^\x00-\x1f\x7f-\x9f{_BIDI}]*$"
"""A name a person types: no control, bidi-override or zero-width character (they forge audit lines and pages)."""
PERSON_PROSE = rf"^[^\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]*$"
"""Free text a person types: as PERSON_TEXT, new lines and tabs allowed."""
Approver = _named_field(PERSON_TEXT, "a name without control, bidi or zero-width characters",
                        min_length=1, max_length=200)
IdentityText = _named_field(PERSON_TEXT, "text without control, bidi or zero-width characters", min_length=1,
                            max_length=320)
"""An e-mail address or a group name an authenticating proxy sent."""
ApprovalComment = _named_field(PERSON_PROSE, "text without control characters other than new line and tab, "
                               "and without bidi or zero-width characters", max_length=4000)
ArgoCDURL = _named_field(ARGOCD_URL, "an http(s) URL (RFC 3986 characters only)", max_length=2048)
TriggerName = _named_field(TRIGGER_NAME, "an Argo CD notification trigger name (letters, digits, '-', '_', '.')",
                           min_length=1, max_length=100)


class ArgoNotification(StrictModel):
    """The JSON body our Argo CD notification template POSTs (deploy/argocd/notifications-cm.yaml).

    Every field is checked where it enters, against what Argo CD itself allows for it: a value that
    Argo CD could not have sent is refused with a message naming the field, never stored."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    app: AppName
    app_namespace: NamespaceName = "argocd"
    project: ProjectName
    revision: Revision = ""
    sync_status: Literal["Synced", "OutOfSync", "Unknown"] = "OutOfSync"
    health_status: Literal["", "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"] = ""
    argocd_url: ArgoCDURL = ""
    event: TriggerName = "on-drift-detected"


class DriftEvent(Versioned):
    """One accepted webhook notification: what Argo CD said, when we got it, and its dedup key."""

    event_id: str = Field(min_length=1, max_length=100)
    idempotency_key: str = Field(min_length=1, max_length=600)
    received_at: AwareDatetime
    notification: ArgoNotification

    @staticmethod
    def key_for(notification: ArgoNotification) -> str:
        """The application's key (namespace/name): intake joins an open decision of the same key and revision."""
        return f"{notification.app_namespace}/{notification.app}"


# --- the drift ---------------------------------------------------------------------------------


class ResourceRef(StrictModel):
    """Names one Kubernetes object: group/version/kind/namespace/name (group "" is the core group)."""

    group: str = ""
    version: str = "v1"
    kind: str = Field(min_length=1)
    namespace: str | None = None
    name: str = Field(min_length=1)

    @property
    def key(self) -> str:
        return f"{self.group or 'core'}/{self.kind}/{self.namespace or '-'}/{self.name}"


class FieldChange(StrictModel):
    """One changed JSON Pointer path of a resource, with Git's value (before) and the cluster's (after)."""

    path: str = Field(pattern=r"^(/.*)?$", description="RFC 6901 JSON Pointer")
    op: Literal["add", "remove", "replace"]
    before: JsonValue = None
    after: JsonValue = None
    redacted: bool = False


class FieldManager(StrictModel):
    """One managedFields entry: who (manager) last wrote which paths, how and when."""

    manager: str
    operation: str = ""
    time: AwareDatetime | None = None
    paths: list[str] = Field(default_factory=list, description="JSON Pointers this manager owns")


class ResourceDrift(StrictModel):
    """One drifted resource: what changed, who changed it and when; Secret values already redacted."""

    ref: ResourceRef
    changes: list[FieldChange] = Field(default_factory=list)
    managers: list[FieldManager] = Field(default_factory=list)
    changed_by: list[str] = Field(default_factory=list, description="managers owning a changed path")
    changed_at: AwareDatetime | None = None
    target: dict[str, JsonValue] | None = Field(default=None, description="Git's manifest (redacted)")
    live: dict[str, JsonValue] | None = Field(default=None, description="the cluster's object (redacted)")


class SyncWindow(StrictModel):
    """An AppProject sync window (Argo CD `spec.syncWindows[]`)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    kind: Literal["allow", "deny"]
    schedule: str
    duration: str
    time_zone: str = "UTC"
    applications: list[str] = Field(default_factory=list)
    namespaces: list[str] = Field(default_factory=list)
    clusters: list[str] = Field(default_factory=list)
    manual_sync: bool = False


class DriftReport(Versioned):
    """The application's drift as Argo CD reports it, stamped with Driftwise's clock (`observed_at`)."""

    event_id: str
    application: str
    app_namespace: str = "argocd"
    project: str
    revision: str = ""
    repo_url: str = ""
    destination_server: str = ""
    destination_namespace: str = ""
    sync_windows: list[SyncWindow] = Field(default_factory=list)
    namespace_labels: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="labels of each namespace the drift touches"
    )
    drifts: list[ResourceDrift] = Field(default_factory=list)
    observed_at: AwareDatetime


# --- evidence ----------------------------------------------------------------------------------


class Evidence(StrictModel):
    """One piece of context from an MCP tool call: the typed value observed, or the error that stopped it."""

    id: str = Field(min_length=1, description="stable reference, cited by recommendations")
    source: str = Field(min_length=1, description="backend: prometheus, grafana, pagerduty, kubernetes")
    tool: str = Field(min_length=1)
    arguments: dict[str, JsonValue] = Field(default_factory=dict)
    value: ToolResult | None = None
    observed_at: AwareDatetime
    error: str | None = None
    via: str | None = Field(default=None, description="the MCP server and tool(s) that answered, when the "
                            "evidence came through a binding (agents/kit/bindings.py)")

    @model_validator(mode="after")
    def _value_xor_error(self) -> Evidence:
        if (self.value is None) == (self.error is None):
            raise ValueError("evidence holds exactly one of `value` or `error`")
        return self

    @property
    def ok(self) -> bool:
        return self.error is None


# --- recommendations ---------------------------------------------------------------------------


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Domain(StrEnum):
    """The grounds a recommendation stands on; the guardrail treats security enforce as binding."""

    SECURITY = "security"
    COMPLIANCE = "compliance"
    OPERATIONAL = "operational"


class FindingKind(StrEnum):
    """What a finding means for the decision (scenarios/README.md rules); reasoners decide on this, never on text.

    - `widened`: privilege or exposure widened, or a security control weakened (rule 1)
    - `strengthened`: a security control made stricter (no harm; benign for the decision)
    - `secret_value`: a Secret's value differs and cannot be judged redacted (rule 2)
    - `freeze`: a regulated scope during a change freeze (rule 3)
    - `unclassified`: a change whose meaning no knowledge pack establishes (rule 7: never benign)
    - `note`: context that decides nothing on its own (lower-severity observations, missing metadata)
    """

    WIDENED = "widened"
    STRENGTHENED = "strengthened"
    SECRET_VALUE = "secret_value"
    FREEZE = "freeze"
    UNCLASSIFIED = "unclassified"
    NOTE = "note"


class Finding(StrictModel):
    """One typed observation behind a recommendation: its domain and kind, which rule, how bad, on which path."""

    rule_id: str = Field(min_length=1)
    domain: Domain
    kind: FindingKind
    severity: Severity
    resource: ResourceRef | None = None
    path: str | None = None
    message: str


class ResourcePaths(StrictModel):
    """Paths of one resource that an allow/defer covers."""

    ref: ResourceRef
    paths: list[str] = Field(min_length=1)


class Scope(StrictModel):
    """What an allow or defer covers: which paths, and until (allow) or not before (defer) when."""

    resources: list[ResourcePaths] = Field(min_length=1)
    until: AwareDatetime | None = None
    not_before: AwareDatetime | None = None


class Recommendation(Versioned):
    """An agent's judgement of one drift event: an action with confidence and reasoning — or an abstention.

    `kind="abstain"` is "nothing in my domain here": no action, and not an allow.
    """

    kind: Literal["recommendation", "abstain"] = "recommendation"
    event_id: str = Field(min_length=1)
    agent: str = Field(min_length=1)
    domain: Domain
    action: Action | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str = Field(min_length=1, max_length=20_000)
    evidence_refs: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    scope: Scope | None = None
    created_at: AwareDatetime

    @model_validator(mode="after")
    def _action_matches_kind(self) -> Recommendation:
        if self.kind == "abstain" and self.action is not None:
            raise ValueError("an abstention carries no action")
        if self.kind == "recommendation" and self.action is None:
            raise ValueError("a recommendation needs an action (use kind='abstain' for none)")
        return self


class SignedRecommendation(StrictModel):
    """A recommendation with its compact JWS (JWT form, EdDSA/Ed25519); the JWS is what counts."""

    jws: str = Field(min_length=1)
    recommendation: Recommendation


class AnalysisRequest(Versioned):
    """What the drift agent (or any peer) sends a specialist over A2A: the report and the evidence so far."""

    event_id: str
    requester: str = Field(min_length=1)
    report: DriftReport
    evidence: list[Evidence] = Field(default_factory=list)

    @model_validator(mode="after")
    def _same_event(self) -> AnalysisRequest:
        if self.report.event_id != self.event_id:
            raise ValueError("report.event_id differs from event_id")
        return self


# --- verdict -----------------------------------------------------------------------------------


class VerdictReason(StrictModel):
    """One reason behind a verdict: a policy rule id, the threshold, a dropped signature, a window."""

    code: str = Field(min_length=1, description="e.g. policy.security_enforce_binding, threshold, signature")
    message: str
    source: str = "guardrail"


class DiscardedRecommendation(StrictModel):
    """A recommendation the guardrail dropped, and the named verification failure."""

    agent: str
    reason: str
    detail: str = ""


class Verdict(Versioned):
    """The guardrail's answer: the final action, whether a human must approve, and every reason."""

    event_id: str
    action: Action
    requires_approval: bool
    allowed_actions: list[Action] = Field(description="what an approver may choose")
    confidence: float = Field(ge=0.0, le=1.0)
    threshold: float = Field(ge=0.0, le=1.0)
    reasons: list[VerdictReason] = Field(default_factory=list)
    discarded: list[DiscardedRecommendation] = Field(default_factory=list)
    scope: Scope | None = None
    decided_at: AwareDatetime

    @model_validator(mode="after")
    def _escalate_needs_human(self) -> Verdict:
        if self.action == Action.ESCALATE and not self.requires_approval:
            raise ValueError("an escalation always needs a human")
        return self


class SignedVerdict(StrictModel):
    """A verdict with the drift agent's compact JWS over it."""

    jws: str = Field(min_length=1)
    verdict: Verdict


# --- decision, approvals, audit ----------------------------------------------------------------


class DecisionState(StrEnum):
    RECEIVED = "received"
    DECIDING = "deciding"
    AWAITING_APPROVAL = "awaiting_approval"
    APPLYING = "applying"
    DONE = "done"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    """A changed drift (or revision) of the same application replaced it before it ended; `superseded_by`."""
    UNKNOWN_APPLICATION = "unknown_application"
    """The Argo CD API does not know the application the notification names: nothing to decide or approve."""
    EXPIRED = "expired"
    """Nobody answered within drift.approval_timeout_h: nothing was done (`expired_at`); a drift that persists
    is decided again as a new event."""

    @property
    def final(self) -> bool:
        """Final for evaluation: decided, even if a human still has to act on it. Not the same as closed:
        agents.drift.open_rule says when a decision is still open to join or supersede."""
        return self in (DecisionState.AWAITING_APPROVAL, DecisionState.DONE, DecisionState.FAILED,
                        DecisionState.SUPERSEDED, DecisionState.UNKNOWN_APPLICATION, DecisionState.EXPIRED)


IdentitySource = Literal["proxy", "console_sign_in", "approvals_token"]
"""How the drift agent knows who answered: an authenticating proxy's headers from a trusted address; the
console's sign-in (the approvals token, and a name the signer typed); the API's approvals token (a name the
caller stated). Only `proxy` is an identity someone else vouched for."""


class Identity(StrictModel):
    """Who answered a decision, as the drift agent established it (never as a caller claims it)."""

    user: Approver = Field(description="the proxy's user, or the name given with the token")
    email: IdentityText | None = None
    groups: list[IdentityText] = Field(default_factory=list, description="the proxy's groups (none without a proxy)")
    via: IdentitySource
    peer: str | None = Field(default=None, description="the address the answer came from")


class Approval(Versioned):
    """A human's answer to a verdict that needed one."""

    decision: Literal["approve", "reject"]
    action: Action | None = None
    approver: Approver
    comment: ApprovalComment = ""
    at: AwareDatetime | None = None
    identity: Identity | None = Field(default=None, description="set by the drift agent from how the answer "
                                                                "was authenticated; a caller never sends it")


class AppliedAction(StrictModel):
    """One thing Driftwise did (or, in shadow mode, would have done) to Argo CD."""

    kind: Literal["sync", "dry_run_sync", "ignore_differences", "remove_ignore_differences", "schedule",
                  "annotate", "approval_request", "none"]
    mode: Literal["shadow", "advisory", "autonomous"]
    executed: bool
    at: AwareDatetime
    detail: dict[str, JsonValue] = Field(default_factory=dict)


LlmFailure = Literal["timeout", "invalid", "cut_off", "refused", "unreachable", "http_error", "unsupported", "error"]
"""Why a model's answer was not used: the kinds `driftwise eval --reasoner llm` counts."""
StructuredOutput = Literal["json_schema", "function_calling", "json_mode"]
"""How the answer's shape is asked of the endpoint (what `llm.structured_output: auto` settles on)."""


class LlmUsage(StrictModel):
    """One decision's exchange with the model, for the audit and the evaluation harness."""

    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    calls: int = Field(default=0, description="requests sent: 1, or 2 with the one repair")
    structured_output: StructuredOutput | None = Field(default=None, description="the method the endpoint accepted")
    model_action: Action | None = Field(default=None, description="what the model alone answered (None: no answer)")
    model_confidence: float | None = None
    rules_action: Action | None = Field(default=None, description="what the rules reasoner decided")
    failure: LlmFailure | None = Field(default=None, description="set when the rules decided instead of the model")
    fell_back: str | None = Field(default=None, description="the failure, said for a person")


class OutcomeKind(StrEnum):
    """What became of a drift after its decision (agents.drift.outcomes follows it)."""

    REVERTED = "reverted"
    """The drifted fields went back to Git's values with no Driftwise write (someone's sync or edit)."""
    ADOPTED = "adopted"
    """Git changed to the live values on the drifted paths (the back-port was merged)."""
    PERSISTED = "persisted"
    """The drift was still there at the horizon."""
    SUPERSEDED = "superseded"
    """The drift changed into another drift: a new decision replaced this one."""
    GONE = "gone"
    """The application or the drifted resource no longer exists."""
    APPROVED = "approved"
    """A human approved the verdict (or chose another allowed action)."""
    REJECTED = "rejected"
    """A human rejected the verdict."""


class Agreement(StrEnum):
    """Whether what people did agrees with the decision (the table in agents.drift.agreement)."""

    AGREES = "agrees"
    DISAGREES = "disagrees"
    POSSIBLY_UNSAFE = "possibly_unsafe"
    """A disagreement where Driftwise chose the weaker action (allow, defer) and people reverted within an hour."""
    ESCALATION = "escalation"
    """An escalation: counted apart (the cost of asking), never for or against."""
    NOT_JUDGED = "not_judged"
    """Superseded or gone: nothing people did says whether the decision was right."""


class Outcome(Versioned):
    """What became of one decision's drift, when, and who (or what) says so."""

    event_id: str = Field(min_length=1)
    kind: OutcomeKind
    action: Action = Field(description="the action decided (the verdict's), that the outcome is judged against")
    mode: Literal["shadow", "advisory", "autonomous"]
    agreement: Agreement
    decided_at: AwareDatetime
    at: AwareDatetime = Field(description="when it happened (or was first seen), on Driftwise's clock")
    after_s: float = Field(ge=0, description="time to outcome: seconds from the decision to `at`")
    by: str = Field(default="", max_length=200, description="who: Argo CD's initiatedBy, a field manager, "
                                                          "a commit's author, the approver")
    reason: str = Field(default="", max_length=4000, description="the approver's comment, or how it was seen")
    revision: str = Field(default="", description="Git's revision when it was seen")
    superseded_by: str | None = None


class Decision(Versioned):
    """Everything about one drift event, end to end: what came in, what was seen, said, decided and done."""

    event: DriftEvent
    state: DecisionState
    mode: Literal["shadow", "advisory", "autonomous"] = Field(
        default="shadow", description="the mode it was decided in; one not yet decided shows the safest, shadow")
    report: DriftReport | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    recommendations: list[SignedRecommendation] = Field(default_factory=list)
    proposal: SignedRecommendation | None = None
    verdict: SignedVerdict | None = None
    approval: Approval | None = None
    applied: list[AppliedAction] = Field(default_factory=list)
    backport_patch: str | None = None
    llm: LlmUsage | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    error: str | None = None
    superseded_by: str | None = Field(default=None, description="the event id of the decision that replaced it")
    expired_at: AwareDatetime | None = Field(default=None, description="when its wait for a human ended unanswered "
                                                                       "(Driftwise's clock)")
    updated_at: AwareDatetime
    outcome: Outcome | None = Field(default=None, description="what became of the drift (served from the outcome "
                                                             "store; null while it is still being followed)")

    @property
    def final(self) -> bool:
        return self.state.final


class AuditRecord(Versioned):
    """One append-only, hash-chained audit entry (modelled on OPA decision logs)."""

    seq: int = Field(ge=1)
    event_id: str
    kind: Literal["decision", "approval", "apply", "expiry", "supersede", "outcome"]
    at: AwareDatetime
    payload: dict[str, Any]
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class AuditCheckpoint(Versioned):
    """The audit chain's head at one moment, signed by the drift agent and kept outside the database."""

    seq: int = Field(ge=0, description="the last record's seq (0: an empty chain)")
    head: str = Field(pattern=r"^[0-9a-f]{64}$", description="that record's hash")
    at: AwareDatetime = Field(description="when the checkpoint was taken")


class SignedCheckpoint(BaseModel):
    """An AuditCheckpoint and its compact JWS (claim `ckp`), as the sinks store and ship it."""

    model_config = ConfigDict(extra="forbid")

    jws: str
    checkpoint: AuditCheckpoint


# --- the drift agent's HTTP API (webhook, decisions, approvals): its answers -------------------


class WebhookAccepted(StrictModel):
    """The webhook's 202: the event id to follow (a new decision's, or the open one a repeat joined)."""

    event_id: str
    state: DecisionState
    duplicate: bool = Field(description="true when the notification joined an open decision")


class DecisionList(StrictModel):
    """`GET /v1/decisions`: newest first."""

    decisions: list[Decision]


class ApiError(StrictModel):
    """Every 4xx/5xx of the drift agent's HTTP API: what is wrong and how to fix it."""

    error: str
    field: str | None = Field(default=None, description="the request field at fault, dotted")
    allowed_actions: list[Action] | None = None
    superseded_by: str | None = None


JsonObject = Annotated[dict[str, JsonValue], Field(description="a JSON object")]


def utc(dt: datetime) -> datetime:
    """Reject naive datetimes early; everything in Driftwise is timezone-aware."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: Driftwise only handles timezone-aware times")
    return dt
