"""`driftwise approvals list|show|approve|reject`: a human's side of a verdict that needs one.

Talks to the drift agent's approvals API with the approvals token from settings; the drift agent
resumes the decision's LangGraph thread, so this works from any machine that can reach it.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    approvals = typer.Typer(help="Decisions waiting for a human: list, show, approve, reject.", no_args_is_help=True)
    app.add_typer(approvals, name="approvals")

    from driftwise.cli import ConfigOption

    url_option = typer.Option(None, "--url", help="drift agent base URL (default: from settings)")

    @approvals.command("list")
    def list_cmd(config: Path | None = ConfigOption, url: str | None = url_option,
                 application: str | None = typer.Option(None, "--application", "-a")) -> None:
        """Decisions awaiting approval."""
        params = {"state": "awaiting_approval", **({"application": application} if application else {})}
        body = _call(config, url, "GET", "/v1/decisions", params=params)
        rows = body.get("decisions", [])
        if not rows:
            typer.echo("no decision is waiting for approval")
        for d in rows:
            verdict = ((d.get("verdict") or {}).get("verdict")) or {}
            allowed = ",".join(verdict.get("allowed_actions", []))
            typer.echo(f"{d['event']['event_id']}  {d['event']['notification']['app']:<28} "
                       f"proposed={verdict.get('action', '?'):<9} allowed={allowed}")

    @approvals.command("show")
    def show(event_id: str, config: Path | None = ConfigOption, url: str | None = url_option) -> None:
        """The whole decision, as JSON."""
        typer.echo(json.dumps(_call(config, url, "GET", f"/v1/decisions/{event_id}"), indent=2))

    @approvals.command("approve")
    def approve(
        event_id: str,
        action: str = typer.Option(..., "--action", help="allow | defer | enforce | escalate (one the verdict allows)"),
        approver: str = typer.Option(..., "--approver", help="your name, recorded in the audit chain"),
        comment: str = typer.Option("", "--comment"),
        config: Path | None = ConfigOption, url: str | None = url_option,
    ) -> None:
        """Approve EVENT_ID with the chosen action; the drift agent carries it out."""
        body = {"decision": "approve", "action": action, "approver": approver, "comment": comment}
        _print_result(_call(config, url, "POST", f"/v1/decisions/{event_id}/approve", json_body=body))

    @approvals.command("reject")
    def reject(
        event_id: str,
        approver: str = typer.Option(..., "--approver"),
        comment: str = typer.Option("", "--comment"),
        config: Path | None = ConfigOption, url: str | None = url_option,
    ) -> None:
        """Reject EVENT_ID: nothing is applied, the drift stays as it is until the next decision."""
        body = {"decision": "reject", "approver": approver, "comment": comment}
        _print_result(_call(config, url, "POST", f"/v1/decisions/{event_id}/reject", json_body=body))


def _print_result(body: dict) -> None:
    typer.echo(f"{body.get('event', {}).get('event_id', '?')}: state={body.get('state')}")


def _call(config: Path | None, url: str | None, method: str, path: str, *, params: dict | None = None,
          json_body: dict | None = None) -> dict:
    import httpx

    from driftwise.cli import fail, settings_or_exit
    from driftwise.settings import ConfigError, require_token
    from driftwise.tokens import local_tokens

    settings = settings_or_exit(config)
    base = url or f"http://{settings.host}:{settings.drift.port}"
    try:  # a local `driftwise up` drew the token into the state folder
        token = require_token("drift.approvals_token", local_tokens(settings, create=False)[0].drift.approvals_token)[0]
    except ConfigError as exc:
        fail(f"configuration error: {exc}", 2)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        resp = httpx.request(method, f"{base}{path}", params=params, json=json_body, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the drift agent at {base}: {exc} (is `driftwise up` running? --url to point elsewhere)")
    if resp.status_code >= 400:
        try:
            message = resp.json().get("error") or resp.text
        except ValueError:
            message = resp.text
        fail(f"{method} {path}: HTTP {resp.status_code}: {message}")
    return resp.json()
