"""The Argo CD side: the notification template renders an ArgoNotification, the trigger fires on
drift, and the Lua health check shows Driftwise's status (run in a real Lua 5.1 runtime, the
dialect of Argo CD's gopher-lua)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

from protocol.models import ArgoNotification

ARGOCD = Path(__file__).resolve().parents[2] / "deploy" / "argocd"
STATUS_ANNOTATION = "driftwise.io/status"


def _configmap(name: str) -> dict[str, str]:
    return yaml.safe_load((ARGOCD / name).read_text())["data"]


def _application(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "payments-api", "namespace": "argocd", "annotations": {}},
        "spec": {"project": "prod", "destination": {"namespace": "payments"}},
        "status": {
            "sync": {"status": "OutOfSync", "revision": "5f2c1e9a"},
            "health": {"status": "Healthy"},
            **status,
        },
    }


# --- notifications: a minimal Go text/template for the field references the template uses ------

_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.S)
_FIELD = re.compile(r"^((?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?:\s*\|\s*default\s+\"([^\"]*)\")?$")


def render_go_template(template: str, data: dict[str, Any]) -> str:
    """`{{.a.b}}` and `{{.a.b | default "x"}}` as Go's text/template (with sprig's default) renders them.

    A missing map key prints `<no value>` (Go's default missingkey behaviour); anything else in
    an action is refused, so the template cannot grow constructs this test does not understand.
    """

    def action(match: re.Match[str]) -> str:
        parsed = _FIELD.match(match.group(1))
        if parsed is None:
            raise AssertionError(f"template action not understood by the test renderer: {match.group(0)}")
        value: Any = data
        for key in parsed.group(1).split(".")[1:]:
            value = value.get(key) if isinstance(value, dict) else None
            if value is None:
                break
        if value is None or (parsed.group(2) is not None and value == ""):
            return parsed.group(2) if parsed.group(2) is not None else "<no value>"
        return str(value)

    return _ACTION.sub(action, template)


def _notification_body(app: dict[str, Any]) -> str:
    data = _configmap("notifications-cm.yaml")
    template = yaml.safe_load(data["template.driftwise-drift"])
    hook = template["webhook"]["driftwise"]
    assert hook["method"] == "POST"
    assert hook["path"] == "/v1/webhooks/argocd"
    context = yaml.safe_load(data["context"])
    return render_go_template(hook["body"], {"app": app, "context": context})


def test_template_body_is_an_argo_notification() -> None:
    body = _notification_body(_application())
    note = ArgoNotification.model_validate_json(body)
    assert note.app == "payments-api"
    assert note.app_namespace == "argocd"
    assert note.project == "prod"
    assert note.revision == "5f2c1e9a"
    assert note.sync_status == "OutOfSync"
    assert note.health_status == "Healthy"
    assert note.argocd_url == "https://argocd.example.com"
    assert note.event == "on-drift-detected"
    # Every field of the model is sent (by its wire name), nothing else.
    sent = set(json.loads(body))
    assert sent == {field.alias for field in ArgoNotification.model_fields.values()}


def test_template_body_without_a_revision_still_validates() -> None:
    app = _application()
    del app["status"]["sync"]["revision"]  # multi-source applications report `revisions` instead
    note = ArgoNotification.model_validate_json(_notification_body(app))
    assert note.revision == ""


def test_renderer_reports_missing_fields_like_go() -> None:
    assert render_go_template("{{.app.nope}}", {"app": {}}) == "<no value>"
    with pytest.raises(AssertionError):
        render_go_template("{{range .app}}", {"app": {}})


def test_webhook_service_and_trigger() -> None:
    data = _configmap("notifications-cm.yaml")
    service = yaml.safe_load(data["service.webhook.driftwise"])
    assert service["url"].startswith("http://driftwise-drift-agent.driftwise.svc:8600")
    assert {"name": "Authorization", "value": "Bearer $driftwise-webhook-token"} in service["headers"]
    (trigger,) = yaml.safe_load(data["trigger.on-drift-detected"])
    assert trigger["when"] == "app.status.sync.status == 'OutOfSync'"
    assert trigger["oncePer"] == "app.status.sync.revision"
    assert trigger["send"] == ["driftwise-drift"]


def test_example_application_is_subscribed_with_self_heal_off() -> None:
    app = yaml.safe_load((ARGOCD / "application-example.yaml").read_text())
    # Structural check of the CRD (no schema shipped for it): the fields Argo CD requires.
    assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
    assert app["metadata"]["name"] and app["metadata"]["namespace"] == "argocd"
    spec = app["spec"]
    assert spec["project"] and spec["source"]["repoURL"] and spec["destination"]["namespace"]
    assert spec["destination"].get("server") or spec["destination"].get("name")
    annotations = app["metadata"]["annotations"]
    assert annotations["notifications.argoproj.io/subscribe.on-drift-detected.driftwise"] == ""
    assert spec["syncPolicy"]["automated"]["selfHeal"] is False
    assert spec["syncPolicy"]["automated"]["prune"] is False


# --- the Lua health customization ---------------------------------------------------------------


@pytest.fixture(scope="module")
def health_script() -> str:
    return _configmap("argocd-cm-health.yaml")["resource.customizations.health.argoproj.io_Application"]


def run_health(script: str, obj: dict[str, Any]) -> dict[str, str]:
    """Run the script the way Argo CD does: `obj` is the resource, the script returns a table."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    return {"status": result["status"], "message": result["message"]}


def _with_status(value: dict[str, str] | str, health: str = "Healthy", message: str | None = None) -> dict:
    app = _application()
    app["status"]["health"] = {"status": health, **({"message": message} if message else {})}
    app["metadata"]["annotations"][STATUS_ANNOTATION] = value if isinstance(value, str) else json.dumps(value)
    return app


@pytest.mark.parametrize("health", ["Healthy", "Progressing", "Degraded", "Missing", "Unknown", "Suspended"])
def test_without_annotation_standard_health(health_script: str, health: str) -> None:
    app = _application(health={"status": health, "message": "from argo"})
    assert run_health(health_script, app) == {"status": health, "message": "from argo"}


def test_without_status_is_progressing(health_script: str) -> None:
    app = _application()
    del app["status"]
    del app["metadata"]["annotations"]
    assert run_health(health_script, app) == {"status": "Progressing", "message": ""}


def test_awaiting_approval_is_suspended(health_script: str) -> None:
    app = _with_status({"state": "awaiting_approval", "event": "evt-42"})
    assert run_health(health_script, app) == {
        "status": "Suspended",
        "message": "Driftwise: drift awaiting approval (event evt-42)",
    }


def test_awaiting_approval_never_hides_a_worse_health(health_script: str) -> None:
    app = _with_status({"state": "awaiting_approval", "event": "evt-42"}, health="Degraded", message="crash")
    assert run_health(health_script, app) == {
        "status": "Degraded",
        "message": "crash; Driftwise: drift awaiting approval (event evt-42)",
    }


def test_deferred_until(health_script: str) -> None:
    app = _with_status({"state": "deferred", "until": "2026-11-21T02:00:00Z", "event": "evt-7"})
    assert run_health(health_script, app) == {
        "status": "Healthy",
        "message": "Driftwise: revert deferred until 2026-11-21T02:00:00Z (event evt-7)",
    }


def test_allowed_until(health_script: str) -> None:
    app = _with_status({"state": "allowed", "until": "2026-11-21T16:30:00Z", "event": "evt-9"})
    assert run_health(health_script, app) == {
        "status": "Healthy",
        "message": "Driftwise: drift allowed until 2026-11-21T16:30:00Z (event evt-9)",
    }


def test_enforced_keeps_the_health(health_script: str) -> None:
    app = _with_status({"state": "enforced", "event": "evt-1"}, health="Progressing")
    assert run_health(health_script, app) == {
        "status": "Progressing",
        "message": "Driftwise: drift enforced (synced to Git) (event evt-1)",
    }


def test_compact_and_spaced_json_read_alike(health_script: str) -> None:
    compact = _with_status('{"state":"deferred","until":"2026-11-21T02:00:00Z","event":"e1"}')
    spaced = _with_status('{ "event" : "e1", "until" : "2026-11-21T02:00:00Z", "state" : "deferred" }')
    assert run_health(health_script, compact) == run_health(health_script, spaced)


def test_unreadable_annotation_keeps_standard_health(health_script: str) -> None:
    app = _with_status("not json", health="Healthy")
    assert run_health(health_script, app) == {
        "status": "Healthy",
        "message": "Driftwise: unreadable driftwise.io/status annotation",
    }
