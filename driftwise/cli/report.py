"""`driftwise report [--since 7d] [--project P] [--json F] [--html F] [--state | --db FILE]`: decisions against
what people did.

By default it asks the drift agent's `GET /v1/report` (approvals token, as `driftwise approvals`). With
--state (or --db) it reads the state itself, read only (agents.drift.state_reader): no drift agent needed, and
the state is never migrated; a state of another schema version is one line. Either way it changes nothing.
With --project the last line says whether that project is ready for its next mode.
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
        html_out: Path | None = typer.Option(None, "--html", help="also write it here as one self-contained HTML "
                                                                 "page with charts"),
        state: bool = typer.Option(False, "--state", help="read the state (state.dsn, else <state_dir>/drift.sqlite) "
                                                          "directly, read only, instead of asking the drift agent"),
        db: Path | None = typer.Option(None, "--db", help="read this SQLite state file directly (implies --state)"),
        config: Path | None = ConfigOption,
        url: str | None = typer.Option(None, "--url", help="drift agent base URL (default: from settings)"),
    ) -> None:
        """Agreement of the decisions with their outcomes, per action, rule, project and specialist, and
        promotion readiness."""
        from protocol.report import AgreementReport

        if state or db is not None:
            found = _from_state(config, db, since, project)
        else:
            from driftwise.cli.approvals import _call

            params = {"since": since, **({"project": project} if project else {})}
            found = AgreementReport.model_validate(_call(config, url, "GET", "/v1/report", params=params))
        if json_out is not None:
            json_out.write_text(found.model_dump_json(indent=2))
        if html_out is not None:
            from agents.drift.report_page import render_page

            html_out.write_text(render_page(found))
        for line in render(found):
            typer.echo(line)


def _from_state(config: Path | None, db: Path | None, since: str, project: str | None) -> object:
    import asyncio
    from datetime import UTC, datetime

    from agents.drift.app import REPORT_LIMIT
    from agents.drift.errors import StoreError
    from agents.drift.report import PromotionRule, ReportError, build_report, parse_since
    from agents.drift.state_reader import read_only_state
    from driftwise.cli import fail, settings_or_exit

    settings = settings_or_exit(config)
    d = settings.drift
    dsn = None if db is not None or settings.state.dsn is None else settings.state.dsn.get_secret_value()
    path = db if db is not None else settings.state_dir / "drift.sqlite"
    rule = PromotionRule(d.promotion_min_decisions, d.promotion_min_agreement, d.promotion_quiet_days)

    async def read() -> object:
        async with read_only_state(dsn, path, settings.state.connect_timeout_s) as found:
            decisions = await found.decisions(REPORT_LIMIT)
        return build_report(decisions, datetime.now(UTC), since=parse_since(since), project=project,
                            mode_for=lambda p: d.project_modes.get(p, d.mode), rule=rule)

    try:
        return asyncio.run(read())
    except (ReportError, StoreError) as exc:
        fail(str(exc), 2)
    raise AssertionError("fail() exits")


def _ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.0%}"


def render(report: object) -> list[str]:
    """The report as lines of text; the readiness lines come last."""
    from protocol.report import RUBRIC_RULES, AgreementReport

    assert isinstance(report, AgreementReport)
    since = report.since.isoformat() if report.since else "the start"
    lines = [f"decisions from {since} to {report.until.isoformat()}"
             + (f", project {report.project}" if report.project else "")]
    for action, modes in report.decisions.items():
        lines.append(f"  {action:<9} " + ", ".join(f"{m} {n}" for m, n in sorted(modes.items())))
    lines.append("outcomes: " + ", ".join(f"{k} {v}" for k, v in report.outcomes.items()))
    lines.append("agreement per action (judged = agrees + disagrees; escalations apart):")
    for action, c in report.per_action.items():
        lines.append(f"  {action:<9} {_ratio(c.ratio):>5} of {c.judged} judged ({c.decided} decided, "
                     f"{c.possibly_unsafe} possibly unsafe, {c.escalations} escalations)")
    if report.per_rule:
        lines.append("agreement per rubric rule (from the findings of each decision):")
        for rule, c in report.per_rule.items():
            lines.append(f"  rule {rule} {_ratio(c.ratio):>5} of {c.judged} judged ({c.decided} decided): "
                         f"{RUBRIC_RULES.get(rule, '')}")
    if len(report.per_project) > 1:
        lines.append("agreement per project:")
        for name, c in report.per_project.items():
            lines.append(f"  {name:<20} {_ratio(c.ratio):>5} of {c.judged} judged ({c.decided} decided)")
    if report.per_specialist:
        lines.append("specialists' answers against the outcomes (as if each had been decided):")
        for agent, s in report.per_specialist.items():
            lines.append(f"  {agent:<12} {_ratio(s.agreement.ratio):>5} of {s.agreement.judged} judged "
                         f"({s.answered} answers, {s.abstained} abstentions); differed from the decision "
                         f"{s.differed} times, right in {s.differed_right} of {s.differed_judged} judged "
                         f"(the decision in {s.decided_right})")
    if (opinions := report.second_opinions) is not None:
        m = opinions.model
        lines.append(f"model second opinions ({', '.join(opinions.models)}): {opinions.decisions} asked, "
                     f"{opinions.failures} fell back; the model {_ratio(m.agreement.ratio)} of {m.agreement.judged}"
                     f" judged, the rules {_ratio(opinions.rules.ratio)} of {opinions.rules.judged}")
        lines.append(f"  where the model disagreed with the rules ({m.differed}): the model right in "
                     f"{m.differed_right} of {m.differed_judged} judged ({_ratio(opinions.right_ratio)}), "
                     f"the rules in {m.decided_right}")
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
