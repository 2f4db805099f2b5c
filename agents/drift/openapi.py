"""The drift agent's own HTTP API (webhook, decisions, approvals) as an OpenAPI 3.1 document.

The operations are declared once, here; agents.drift.app mounts its routes from the same list, and
every request and response schema is generated from the protocol models (pydantic), never written
by hand. The A2A routes are the SDK's and documented by the agent card, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from protocol.models import ApiError, Approval, ArgoNotification, Decision, DecisionList, DecisionState, WebhookAccepted
from protocol.report import AgreementReport

WEBHOOK_PATH = "/v1/webhooks/argocd"
DECISIONS_PATH = "/v1/decisions"
REPORT_PATH = "/v1/report"
OPENAPI_PATH = "/openapi.json"
MAX_WAIT_S = 60.0
"""The longest a `GET /v1/decisions/{id}?wait=S` holds its request open."""
UNTIL = ("final", "verdict")
_REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["query", "path"]
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Operation:
    id: str
    method: Literal["GET", "POST"]
    path: str
    summary: str
    security: Literal["webhook", "approvals"]
    ok: tuple[int, type[BaseModel]]
    errors: tuple[int, ...]
    request: type[BaseModel] | None = None
    request_required: bool = True
    params: tuple[Param, ...] = field(default_factory=tuple)


_EVENT_ID = Param("event_id", "path", {"type": "string", "minLength": 1}, "the event id the webhook answered with",
                  required=True)

OPERATIONS: tuple[Operation, ...] = (
    Operation("webhook", "POST", WEBHOOK_PATH, "Take an Argo CD notification (our notification template's body)",
              "webhook", (202, WebhookAccepted), (400, 401, 413, 415, 422, 503), request=ArgoNotification),
    Operation("list_decisions", "GET", DECISIONS_PATH, "Decisions, newest first", "approvals",
              (200, DecisionList), (400, 401, 403), params=(
                  Param("application", "query", {"type": "string"}, "only this application's"),
                  Param("state", "query", {"type": "string", "enum": [s.value for s in DecisionState]},
                        "only decisions in this state"))),
    Operation("get_decision", "GET", DECISIONS_PATH + "/{event_id}", "One event's decision (its own, or the one "
              "it joined)", "approvals", (200, Decision), (400, 401, 403, 404), params=(
                  _EVENT_ID,
                  Param("wait", "query", {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WAIT_S},
                        "hold the request up to this many seconds until the decision is final (or has its verdict)"),
                  Param("until", "query", {"type": "string", "enum": list(UNTIL)},
                        "with `wait`: final (the default) or verdict"))),
    Operation("approve", "POST", DECISIONS_PATH + "/{event_id}/approve", "Approve a decision awaiting approval, "
              "optionally choosing another allowed action", "approvals", (200, Decision),
              (400, 401, 403, 404, 409, 413, 415, 422), request=Approval, request_required=False,
              params=(_EVENT_ID,)),
    Operation("reject", "POST", DECISIONS_PATH + "/{event_id}/reject", "Reject a decision awaiting approval",
              "approvals", (200, Decision), (400, 401, 403, 404, 409, 413, 415, 422), request=Approval,
              request_required=False, params=(_EVENT_ID,)),
    Operation("report", "GET", REPORT_PATH, "Agreement of the decisions with their outcomes, and promotion readiness",
              "approvals", (200, AgreementReport), (400, 401, 403, 404), params=(
                  Param("since", "query", {"type": "string", "pattern": "^[0-9]+[dhm]$"},
                        "the period, counted back from Driftwise's now: 7d (the default), 36h, 90m"),
                  Param("project", "query", {"type": "string"}, "only this Argo CD project's decisions"))),
)

_ERROR_TEXT = {400: "the request is malformed (the message says how)", 401: "missing or wrong credentials",
               403: "an identity header from an address that is not the trusted proxy's "
               "(console.proxy.trusted_cidrs), or an approver the project's console.approvers does not list",
               404: "no such decision (the report: no decision of that project in the period)",
               409: "the decision is not awaiting approval (superseded: `superseded_by` "
               "names the decision to answer instead)", 413: "body larger than drift.max_body_bytes",
               415: "Content-Type is not application/json", 422: "a field is invalid (`field` names it)",
               503: "the event store is busy: nothing was stored, retry"}
_SECURITY = {"webhook": [{"webhookBearer": []}, {"webhookBasic": []}], "approvals": [{"approvalsBearer": []}]}


def _schemas() -> tuple[dict[tuple[type[BaseModel], JsonSchemaMode], Any], dict[str, Any]]:
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for op in OPERATIONS:
        if op.request is not None:
            wanted[(op.request, "validation")] = None
        wanted[(op.ok[1], "serialization")] = None
    wanted[(ApiError, "serialization")] = None
    refs, top = models_json_schema(list(wanted), ref_template=_REF, by_alias=True)
    return refs, top.get("$defs", {})


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_document(version: str = "0.1.0") -> dict[str, Any]:
    refs, components = _schemas()
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        status, model = op.ok
        responses = {str(status): _json(refs[(model, "serialization")], model.__doc__ or model.__name__)}
        for code in op.errors:
            responses[str(code)] = _json(refs[(ApiError, "serialization")], _ERROR_TEXT[code])
        operation: dict[str, Any] = {"operationId": op.id, "summary": op.summary, "security": _SECURITY[op.security],
                                     "responses": responses}
        if op.params:
            operation["parameters"] = [{"name": p.name, "in": p.where, "required": p.required,
                                        "description": p.description, "schema": p.schema} for p in op.params]
        if op.request is not None:
            operation["requestBody"] = {"required": op.request_required,
                                        "content": {"application/json": {"schema": refs[(op.request, "validation")]}}}
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Driftwise drift agent", "version": version,
                 "description": "Argo CD drift intake, decisions and approvals. The A2A face is described by "
                                "/.well-known/agent-card.json."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "webhookBearer": {"type": "http", "scheme": "bearer", "description": "drift.webhook_token"},
                "webhookBasic": {"type": "http", "scheme": "basic",
                                 "description": "drift.webhook_basic_user / webhook_basic_password"},
                "approvalsBearer": {"type": "http", "scheme": "bearer", "description": "drift.approvals_token"},
            },
        },
    }
