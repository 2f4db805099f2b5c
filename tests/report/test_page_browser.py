"""The report page in headless Chromium (Playwright, Debian's chromium): it asks for nothing but itself, the
hostile text in it never runs, the three charts are drawn at a readable size with their text, and a PNG of
the charts is saved to build/report/report-charts.png (git-ignored; docs/report-charts.png is one from the
shadow week's real report)."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.report import AgreementReport
from tests.support.processes import ROOT

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api")

PNG = ROOT / "build" / "report" / "report-charts.png"


def test_the_page_draws_its_charts_in_chromium_and_fetches_nothing(tmp_path: Path,
                                                                  week_page: tuple[AgreementReport, str]) -> None:
    from tests.report.browser import look

    page = tmp_path / "report.html"
    page.write_text(week_page[1])
    seen = look(page, PNG)
    assert seen.requests == [page.resolve().as_uri()], seen.requests
    assert seen.owned is None
    assert set(seen.figures) == {"chart-over-time", "chart-confusion", "chart-per-rule"}
    assert all(w >= 300 and h >= 120 for w, h in seen.figures.values()), seen.figures
    for title in ("Agreement over time (by the day decided, UTC)", "Decided x outcome", "Agreement per rubric rule"):
        assert title in seen.titles, seen.titles
    assert seen.png_size[0] >= 600 and seen.png_size[1] >= 300, seen.png_size
