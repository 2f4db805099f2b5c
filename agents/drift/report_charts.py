"""The agreement report's charts as inline SVG (matplotlib): agreement over time, the decided x outcome matrix,
agreement per rubric rule.

matplotlib because it renders static SVG in process with no JavaScript, no network and no browser: the
HTML report stays one self-contained file, and the console can embed the very same SVG. The figures use
the object API (`Figure`, no pyplot), so nothing global is touched; ids are salted and the date left out,
so the same report gives the same bytes. Only enum values, numbers and dates are drawn: the free text of a
decision (names, reasoning) stays in the page's escaped HTML, never in an SVG.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocol.models import Action, OutcomeKind
from protocol.report import AgreementReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

AGREE, DISAGREE, UNSAFE, MUTED = "#2e7d32", "#c62828", "#b71c1c", "#90a4ae"
_RC = {"svg.hashsalt": "driftwise-report", "svg.fonttype": "none", "font.size": 9,
       "font.family": ["DejaVu Sans", "sans-serif"], "axes.spines.top": False, "axes.spines.right": False}
OUTCOMES = [k.value for k in OutcomeKind] + ["pending"]
MAX_TICKS = 14


@dataclass(frozen=True)
class Charts:
    over_time: str
    confusion: str
    per_rule: str | None


def _svg(fig: Figure) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # inline: without the XML declaration and doctype
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)  # the RDF block names URLs


def _figure(width: float, height: float) -> Figure:
    """A figure of its own (no pyplot state); call inside rc_context(_RC), where its artists take their style."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def over_time(report: AgreementReport) -> str:
    """Bars: judged decisions per day (possibly unsafe in red); line: that day's agreement."""
    import matplotlib
    from matplotlib.ticker import MaxNLocator

    days = report.daily
    with matplotlib.rc_context(_RC):
        fig = _figure(6.4, 2.6)
        counts = fig.add_subplot()
        x = list(range(len(days)))
        labels = [d.day.strftime("%b %d") for d in days]
        counts.bar(x, [d.judged - d.possibly_unsafe for d in days], color=MUTED, label="judged")
        counts.bar(x, [d.possibly_unsafe for d in days], bottom=[d.judged - d.possibly_unsafe for d in days],
                   color=UNSAFE, label="possibly unsafe")
        counts.set_xlim(-0.5 - max(0, 3 - len(days)) / 2, len(days) - 0.5 + max(0, 3 - len(days)) / 2)
        counts.set_ylabel("judged decisions")
        step = -(-len(days) // MAX_TICKS)  # a long period labels every step-th day, so labels never overlap
        counts.set_xticks(x[::step], labels[::step], rotation=0 if len(days) <= 10 else 45)
        ratio = counts.twinx()
        ratio.spines["right"].set_visible(True)
        points = [(i, d.ratio * 100) for i, d in enumerate(days) if d.ratio is not None]
        if points:
            ratio.plot([p[0] for p in points], [p[1] for p in points], color=AGREE, marker="o", label="agreement")
            for i, value in points if len(points) <= MAX_TICKS else []:  # a long period: the line alone
                ratio.annotate(f"{value:.0f}%", (i, value), textcoords="offset points", xytext=(0, 6), ha="center",
                               fontsize=8, color=AGREE)
        ratio.set_ylim(0, 112)
        ratio.set_yticks([0, 20, 40, 60, 80, 100])
        ratio.set_ylabel("agreement %")
        handles = [*counts.get_legend_handles_labels()[0], *ratio.get_legend_handles_labels()[0]]
        fig.legend(handles=handles, loc="outside lower center", frameon=False, ncols=3, fontsize=8)
        counts.yaxis.set_major_locator(MaxNLocator(integer=True))
        counts.set_title("Agreement over time (by the day decided, UTC)", loc="left")
        return _svg(fig)


def confusion(report: AgreementReport) -> str:
    """Decided action (rows) x what became of the drift (columns), each cell its count."""
    import matplotlib

    actions = [a.value for a in Action if a.value in report.confusion]
    outcomes = [o for o in OUTCOMES if any(o in row for row in report.confusion.values())]
    grid = [[report.confusion[a].get(o, 0) for o in outcomes] for a in actions]
    peak = max((n for row in grid for n in row), default=0) or 1
    with matplotlib.rc_context(_RC):
        fig = _figure(1.2 + 0.85 * len(outcomes), 0.9 + 0.45 * len(actions))
        ax = fig.add_subplot()
        # pcolormesh, not imshow: vector cells (imshow embeds a raster image in the SVG)
        ax.pcolormesh(grid, cmap="Blues", vmin=0, vmax=peak * 1.25, edgecolors="white", linewidth=1)
        ax.invert_yaxis()
        for i, row in enumerate(grid):
            for j, n in enumerate(row):
                ax.text(j + 0.5, i + 0.5, str(n), ha="center", va="center",
                        color="white" if n > peak * 0.6 else "black")
        ax.set_xticks([j + 0.5 for j in range(len(outcomes))], outcomes)
        ax.set_yticks([i + 0.5 for i in range(len(actions))], actions)
        ax.set_xlabel("what became of the drift")
        ax.set_ylabel("decided")
        ax.tick_params(length=0)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.set_title("Decided x outcome", loc="left")
        return _svg(fig)


def per_rule(report: AgreementReport) -> str | None:
    """Agreement of each rubric rule's decisions, with how many were judged; None with no rule judged."""
    import matplotlib

    rules = [(rule, c) for rule, c in report.per_rule.items() if c.judged]
    if not rules:
        return None
    with matplotlib.rc_context(_RC):
        fig = _figure(7.0, 0.7 + 0.32 * len(rules))
        ax = fig.add_subplot()
        y = list(range(len(rules)))
        ratios = [(c.ratio or 0.0) * 100 for _, c in rules]
        ax.barh(y, ratios, color=[AGREE if r >= 95 else DISAGREE for r in ratios])
        for i, (_, c) in enumerate(rules):
            ax.text(min(ratios[i], 100) + 1, i, f"{ratios[i]:.0f}% of {c.judged}", va="center", fontsize=8)
        ax.set_yticks(y, [f"rule {rule}" for rule, _ in rules])
        ax.invert_yaxis()
        ax.set_xlim(0, 118)
        ax.set_xlabel("agreement % (judged decisions)")
        ax.set_title("Agreement per rubric rule", loc="left")
        return _svg(fig)


def charts(report: AgreementReport) -> Charts:
    return Charts(over_time=over_time(report), confusion=confusion(report), per_rule=per_rule(report))
