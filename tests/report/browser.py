"""The report page in Debian's Chromium, driven by Playwright: what a person would see of it."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from tests.console.test_browser import CHROMIUM_ARGS
from tests.support.binaries import require_binary

WAIT_MS = 20_000


@dataclass(frozen=True)
class Seen:
    requests: list[str]
    """every URL the page asked for (the page itself included)"""
    owned: object
    """window.__owned: set only if hostile text in the page ran as script"""
    figures: dict[str, tuple[float, float]]
    """figure id -> its drawn width and height, in CSS pixels"""
    titles: list[str]
    """the charts' text as the browser laid it out"""
    png_size: tuple[int, int]


def look(page_file: Path, png: Path) -> Seen:
    """Open the page, check what it drew, and save a PNG of its charts to `png`."""
    from playwright.sync_api import sync_playwright

    chromium = require_binary("chromium")
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(WAIT_MS)
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.resolve().as_uri(), wait_until="load")
            figures = {}
            for figure in page.locator("figure").all():
                box = figure.locator("svg").bounding_box()
                assert box is not None
                figures[figure.get_attribute("id") or "?"] = (box["width"], box["height"])
            titles = page.locator("figure svg text").all_text_contents()
            owned = page.evaluate("window.__owned")
            png.parent.mkdir(parents=True, exist_ok=True)
            page.locator("#charts").screenshot(path=str(png))
        finally:
            browser.close()
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return Seen(requests, owned, figures, titles, (width, height))
