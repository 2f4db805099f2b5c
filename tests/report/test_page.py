"""`driftwise report --html`'s page, in process: one self-contained file (no script, nothing fetched), the
charts as inline SVG carrying only numbers, dates and enum values, every decision's text escaped, and the
same report giving the same bytes."""

from __future__ import annotations

import re

from agents.drift.report_page import render_page
from protocol.report import AgreementReport
from tests.report.week import HOSTILE

SVG_NS = ("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink", "http://purl.org/dc/elements/1.1/",
          "http://creativecommons.org/ns#", "http://www.w3.org/1999/02/22-rdf-syntax-ns#")


def test_the_page_is_self_contained_and_escapes_what_decisions_say(week_page: tuple[AgreementReport, str]) -> None:
    report, page = week_page
    assert page.startswith("<!doctype html>")
    assert "<script" not in page.lower() and HOSTILE not in page
    assert "&lt;script&gt;window.__owned = 1&lt;/script&gt;" in page  # the reasoning, shown as text
    # nothing to fetch: every reference is inside the page, every URL an XML namespace
    assert all(ref.startswith("#") for ref in re.findall(r'(?:href|src)="([^"]*)"', page)), "an outside reference"
    assert set(re.findall(r"https?://[^\s\"'<>)&]+", page)) <= set(SVG_NS) | {"https://evil.example/x.png"}
    assert page.count("https://evil.example/x.png") == page.count("&lt;img src=&#34;https://evil.example/x.png")
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(svgs) == 3
    assert all("evil" not in s and "script" not in s for s in svgs)
    for section in ("readiness", "per-action", "per-rule", "per-project", "per-specialist", "second-opinions",
                    "confusion", "disagreements"):
        assert f'<section id="{section}"' in page, section
    assert render_page(report) == page


def test_the_page_shows_the_new_numbers(week_page: tuple[AgreementReport, str]) -> None:
    report, page = week_page
    opinions = report.second_opinions
    assert opinions is not None and opinions.right_ratio is not None
    assert f"<strong>{opinions.right_ratio:.0%}</strong>" in page
    assert "privilege or exposure widened -&gt; enforce" in page
    assert [d.day.isoformat() for d in report.daily] == [f"2026-11-{20 + i}" for i in range(7)]
    # the over-time chart draws a label per day
    chart = re.search(r'<figure id="chart-over-time".*?</figure>', page, flags=re.S)
    assert chart is not None and all(day.day.strftime("%b %d") in chart.group(0) for day in report.daily)


def test_a_long_period_labels_some_days_only() -> None:
    from datetime import timedelta

    from agents.drift.report import PromotionRule, build_report
    from agents.drift.report_charts import MAX_TICKS, over_time
    from tests.report.decisions import T0, A, G, K, decision

    decisions = [decision(A.ENFORCE, K.REVERTED, G.AGREES, day=d) for d in range(0, 90, 3)]
    report = build_report(decisions, T0 + timedelta(days=90), since=None, project=None, mode_for=lambda p: "shadow",
                          rule=PromotionRule())
    assert len(report.daily) == 88
    svg = over_time(report)
    shown = [d for d in report.daily if d.day.strftime("%b %d") in svg]
    assert shown[0] == report.daily[0] and MAX_TICKS // 2 <= len(shown) <= MAX_TICKS, len(shown)
