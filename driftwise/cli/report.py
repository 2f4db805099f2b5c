"""`driftwise report [--since 7d] [--project P] [--json F]`: decisions against what people did.

Asks the drift agent's `GET /v1/report` (approvals token, as `driftwise approvals`): it reads, it never
changes anything. With --project the last line says whether that project is ready for its next mode.
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from driftwise.cli import ConfigOption

    @app.command("report")
    def report(
        since: str = typer.Option("7d", "--since", help="the period, counted back from now: 7d, 36h, 90m"),
        project: str | None = typer.Option(None, "--project", "-p", help="one Argo CD project"),
        json_out: Path | None = typer.Option(None, "--json", help="also write the whole report here, as JSON"),
        config: Path | None = ConfigOption,
        url: str | None = typer.Option(None, "--url", help="drift agent base URL (default: from settings)"),
    ) -> None:
        """Agreement of the decisions with their outcomes, per action and project, and promotion readiness."""
        from driftwise.cli.approvals import _call
        from protocol.report import AgreementReport

        params = {"since": since, **({"project": project} if project else {})}
        found = AgreementReport.model_validate(_call(config, url, "GET", "/v1/report", params=params))
        if json_out is not None:
            json_out.write_text(found.model_dump_json(indent=2))
        for line in render(found):
            typer.echo(line)


def render(report: object) -> list[str]:
    """The report as lines of text; the readiness lines come last."""
    from protocol.report import AgreementReport

    assert isinstance(report, AgreementReport)
    since = report.since.isoformat() if report.since else "the start"
    lines = [f"decisions from {since} to {report.until.isoformat()}"
             + (f", project {report.project}" if report.project else "")]
    for action, modes in report.decisions.items():
        lines.append(f"  {action:<9} " + ", ".join(f"{m} {n}" for m, n in sorted(modes.items())))
    lines.append("outcomes: " + ", ".join(f"{k} {v}" for k, v in report.outcomes.items()))
    lines.append("agreement per action (judged = agrees + disagrees; escalations apart):")
    for action, c in report.per_action.items():
        ratio = "-" if c.ratio is None else f"{c.ratio:.0%}"
        lines.append(f"  {action:<9} {ratio:>5} of {c.judged} judged ({c.decided} decided, "
                     f"{c.possibly_unsafe} possibly unsafe, {c.escalations} escalations)")
    lines.append("decided x outcome:")
    for action, row in report.confusion.items():
        lines.append(f"  {action:<9} " + ", ".join(f"{k} {v}" for k, v in row.items()))
    if report.time_to_outcome_p50_s:
        lines.append("time to outcome (p50): " + ", ".join(f"{k} {v / 60:.0f} min"
                                                          for k, v in report.time_to_outcome_p50_s.items()))
    if report.escalation_rate is not None:
        lines.append(f"escalation rate: {report.escalation_rate:.0%}")
    for d in report.disagreements:
        lines.append(f"  {d.agreement.value:<15} {d.event_id} {d.application}: {d.action.value} but {d.outcome.value}"
                     f"{' by ' + d.by if d.by else ''} after {d.after_s / 60:.0f} min: {d.reasoning[:160]}")
    lines += [r.line for r in report.readiness]
    return lines
