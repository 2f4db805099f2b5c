"""Each simulated API's own error body, in one table: what its clients parse when something is wrong.

Kubernetes answers a `Status`; argocd-server (grpc-gateway) `{error, code, message}` with the gRPC code;
Grafana `{message}` (and a traceID); PagerDuty `{error: {message, code, errors}}`; Prometheus's API
`{status: "error", errorType, error}` and, for a path its router does not know, Go's plain-text 404.
The backends, the unknown-route handler and the faults all answer through this module.
"""

from __future__ import annotations

import json
from typing import Any

Obj = dict[str, Any]
_K8S_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
                406: "NotAcceptable", 410: "Expired", 415: "UnsupportedMediaType", 503: "ServiceUnavailable"}
# gRPC status codes argocd-server puts in its JSON errors.
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 409: 6, 412: 9, 500: 13, 501: 12, 502: 14, 503: 14,
               504: 4}
_PROMETHEUS_TYPES = {400: "bad_data", 404: "not_found", 422: "execution", 503: "unavailable"}


def kubernetes(status: int, message: str, details: Obj | None = None) -> Obj:
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                 "reason": _K8S_REASONS.get(status, "InternalError"), "code": status}
    if details:
        body["details"] = details
    return body


def argocd(status: int, message: str) -> Obj:
    return {"error": message, "code": _GRPC_CODES.get(status, 2), "message": message}


def grafana(status: int, message: str) -> Obj:
    return {"message": message, "traceID": ""}


def pagerduty(status: int, code: int, message: str, errors: list[str] | None = None) -> Obj:
    return {"error": {"message": message, "code": code, "errors": errors or []}}


def prometheus(status: int, message: str) -> Obj:
    return {"status": "error", "errorType": _PROMETHEUS_TYPES.get(status, "internal"), "error": message}


def for_backend(backend: str, status: int, message: str) -> bytes:
    """The JSON error body `backend` would send with `status` (PagerDuty's generic code is 2100 for a 404, 2001
    for other client errors, 2000 otherwise)."""
    if backend == "kubernetes":
        body = kubernetes(status, message)
    elif backend == "argocd":
        body = argocd(status, message)
    elif backend == "grafana":
        body = grafana(status, message)
    elif backend == "pagerduty":
        body = pagerduty(status, 2100 if status == 404 else 2001 if status < 500 else 2000, message)
    else:
        body = prometheus(status, message)
    return json.dumps(body).encode()
