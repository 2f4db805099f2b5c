"""The agreement report as one self-contained HTML page (`driftwise report --html F`): inline CSS and the
charts as inline SVG (agents.drift.report_charts); no script, no link, nothing fetched.

Every text that comes from a decision (application and project names, reasoning, who) goes through Jinja2's
autoescape; the SVG is ours (numbers, dates, enum values) and is the one thing marked safe.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from markupsafe import Markup

from agents.drift.report_charts import charts
from protocol.report import RUBRIC_RULES, AgreementReport

TEMPLATE = "report_page.html.tmpl"


@cache
def _template() -> Template:
    env = Environment(loader=FileSystemLoader(Path(__file__).parent), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["pct"] = lambda r: "-" if r is None else f"{r:.0%}"
    env.filters["minutes"] = lambda s: f"{s / 60:.0f} min"
    return env.get_template(TEMPLATE)


def render_page(report: AgreementReport) -> str:
    drawn = charts(report)
    return _template().render(
        r=report, rules=RUBRIC_RULES, over_time=Markup(drawn.over_time), confusion=Markup(drawn.confusion),
        per_rule=Markup(drawn.per_rule) if drawn.per_rule else None,
    )
