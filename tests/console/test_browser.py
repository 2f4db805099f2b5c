"""The console in a real browser: Debian's Chromium driven by Playwright, against the real processes (sandbox,
four MCP servers, both specialists, a drift agent in advisory mode).

A drift waits for a human -> it appears in the open queue without a reload -> the approver opens it, sees
the diff and the evidence -> approves with a reason -> the sandbox records Argo CD's sync -> the audit
holds the approver. Also: reject, the login redirect, the API's 401, a POST without the CSRF token,
two tabs approving once, the keyboard alone, axe-core, and hostile text that never executes.
Screenshots of the queue and a decision page go to build/console-screenshots/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from agents.drift.audit import AuditLog
from agents.drift.store import EventStore
from protocol.models import Decision, DecisionState
from tests.console.decisions import decision
from tests.console.test_console import CORPUS
from tests.support.acting_stack import AUTH, Stack, post
from tests.support.binaries import IN_CI, require_binary
from tests.support.e2e import APPROVALS, DriftProc
from tests.support.processes import ROOT, SCENARIOS, wait_until

pytestmark = pytest.mark.slow
playwright = pytest.importorskip("playwright.sync_api")

SCREENSHOTS = ROOT / "build" / "console-screenshots"
AXE = ROOT / "build" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"  # axe-core 4.14.1 (Makefile)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-gpu", "--disable-sync", "--no-first-run"]
WAIT_MS = 20_000
T = TypeVar("T")


def _scenario(action: str | None = None, tag: str | None = None) -> dict:
    """The first visible scenario expecting `action` and carrying `tag`: chosen by the rubric's labels."""
    for path in sorted(SCENARIOS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if action in (None, doc["expect"]["action"]) and (tag is None or tag in doc.get("tags", [])):
            return doc
    raise AssertionError(f"no visible scenario expects {action} with tag {tag}")


@dataclass
class Console:
    stack: Stack
    drift: DriftProc
    browser: object
    notifications: list[dict]

    @property
    def url(self) -> str:
        return f"{self.drift.url}/console"

    def page(self, context: object | None = None) -> object:
        context = context or self.browser.new_context()
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        return page

    def login(self, page: object, name: str = "ana") -> None:
        page.goto(f"{self.url}/")
        assert "/console/login" in page.url
        page.fill("#approver", name)
        page.fill("#token", APPROVALS)
        page.click("button[type=submit]")
        page.wait_for_url(f"{self.url}/")

    def waiting(self) -> str:
        """A new decision awaiting approval (the next clone of the enforce scenario), by its event id."""
        event_id = post(self.drift, self.notifications.pop())
        wait_until(lambda: self.decision(event_id).state == DecisionState.AWAITING_APPROVAL, 30,
                   f"{event_id} awaiting approval", self.drift.proc)
        return event_id

    def decision(self, event_id: str) -> Decision:
        r = httpx.get(f"{self.drift.url}/v1/decisions/{event_id}", headers=AUTH, timeout=5)
        assert r.status_code == 200, r.text
        return Decision.model_validate(r.json())

    def syncs(self, app: str) -> list[dict]:
        return [w for w in self.stack.sandbox.writes() if w["path"] == f"/api/v1/applications/{app}/sync"
                and not w["body"].get("dryRun")]


@pytest.fixture(scope="module")
def console(stack: Stack) -> Iterator[Console]:
    chromium = require_binary("chromium")
    from playwright.sync_api import sync_playwright

    drift = stack.drift("console", "advisory", linked=True)
    enforce = _scenario("enforce")
    r = httpx.post(f"{stack.sandbox.argocd}/sandbox/clones", json={"id": enforce["id"], "count": 7}, timeout=30)
    assert r.status_code == 200, r.text
    notifications = [a["notification"] for a in r.json()["applications"]]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield Console(stack, drift, browser, notifications)
        finally:
            browser.close()


def test_a_waiting_drift_appears_live_and_an_approval_syncs_and_is_audited(console: Console) -> None:
    page = console.page()
    console.login(page)
    page.evaluate("window.__notReloaded = true")
    event_id = console.waiting()
    row = page.locator(f'tr[data-event="{event_id}"]')
    row.wait_for()  # the htmx poll brought it in
    assert page.evaluate("window.__notReloaded") is True
    assert "advisory mode: every action waits for a human" in row.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "queue.png"), full_page=True)

    before = console.decision(event_id)
    assert before.report is not None and before.evidence
    row.locator("a").click()
    page.wait_for_url(re.compile(f"/console/decisions/{event_id}$"))
    diff = page.locator("table.diff").first.inner_text()
    assert before.report.drifts[0].changes[0].path in diff
    evidence = page.locator("#evidence-h").locator("xpath=..").inner_text()
    assert any(e.source in evidence for e in before.evidence)
    page.screenshot(path=str(SCREENSHOTS / "decision.png"), full_page=True)

    page.select_option("#approve-action", "enforce")
    page.fill("#approve-reason", "revert it: the spike is over")
    page.click("#approve")
    page.wait_for_url(re.compile(r"\?answered=approve$"))
    assert page.locator("#approval").inner_text().startswith("approved by ana")
    app = before.event.notification.app
    assert len(console.syncs(app)) == 1
    after = console.decision(event_id)
    assert after.state == DecisionState.DONE and after.approval is not None and after.approval.approver == "ana"
    (approval,) = [r for r in audit(console.drift, event_id) if r.kind == "approval"]
    assert approval.payload["approval"]["approver"] == "ana"
    assert approval.payload["approval"]["comment"] == "revert it: the spike is over"
    assert approval.payload["approval"]["identity"]["via"] == "console_sign_in"  # how the audit knows it is ana


def test_argo_cds_link_on_the_application_opens_the_decision_page(console: Console) -> None:
    event_id = console.waiting()
    app = console.decision(event_id).event.notification.app
    (patch,) = [json.loads(w["body"]["patch"]) for w in console.stack.sandbox.writes()
                if w["method"] == "PATCH" and w["path"] == f"/api/v1/applications/{app}"]
    title, link = patch["metadata"]["annotations"]["link.argocd.argoproj.io/driftwise"].split("|")
    assert title == "Driftwise decision" and link == f"{console.url}/decisions/{event_id}"
    page = console.page()
    page.goto(link)  # as from Argo CD's UI: to the sign-in, then on to the decision
    page.fill("#approver", "ana")
    page.fill("#token", APPROVALS)
    page.click("button[type=submit]")
    page.wait_for_url(link)
    assert event_id in page.locator("main").inner_text() and page.locator("#approve-form").is_visible()


def test_an_identity_header_from_no_trusted_proxy_is_refused_with_a_page(console: Console) -> None:
    context = console.browser.new_context(extra_http_headers={"X-Forwarded-User": "mallory"})
    page = console.page(context)
    response = page.goto(f"{console.url}/")
    assert response is not None and response.status == 403
    text = page.locator("main").inner_text()
    assert "carries X-Forwarded-User" in text and "console.proxy.trusted_cidrs is empty" in text
    context.close()


def test_reject_needs_a_reason_and_does_not_sync(console: Console) -> None:
    page = console.page()
    console.login(page, "bo")
    event_id = console.waiting()
    page.goto(f"{console.url}/decisions/{event_id}")
    page.click("#reject")  # the browser refuses the empty required reason: nothing is sent
    assert page.evaluate("document.querySelector('#reject-reason').validity.valueMissing") is True
    assert console.decision(event_id).state == DecisionState.AWAITING_APPROVAL
    page.fill("#reject-reason", "the change is wanted; fixing Git instead")
    page.click("#reject")
    page.wait_for_url(re.compile(r"\?answered=reject$"))
    after = console.decision(event_id)
    assert after.approval is not None and after.approval.decision == "reject" and after.approval.approver == "bo"
    assert console.syncs(after.event.notification.app) == []
    assert [r.payload["approval"]["approver"] for r in audit(console.drift, event_id) if r.kind == "approval"] == ["bo"]


def test_no_session_is_sent_to_the_login_and_the_api_without_a_token_is_401(console: Console) -> None:
    page = console.page()
    page.goto(f"{console.url}/decisions?state=done")
    assert page.url.endswith("/console/login?next=/console/decisions%3Fstate%3Ddone")
    assert httpx.get(f"{console.drift.url}/v1/decisions", timeout=5).status_code == 401


def test_a_post_without_the_csrf_token_is_refused(console: Console) -> None:
    page = console.page()
    console.login(page)
    event_id = console.waiting()
    r = page.request.post(f"{console.url}/decisions/{event_id}/approve", form={"action": "enforce"},
                          max_redirects=0)
    assert r.status == 403 and "CSRF" in r.text()
    assert console.decision(event_id).state == DecisionState.AWAITING_APPROVAL


def test_the_same_decision_approved_in_two_tabs_acts_once(console: Console) -> None:
    first = console.page()
    console.login(first)
    second = first.context.new_page()
    event_id = console.waiting()
    for tab in (first, second):
        tab.goto(f"{console.url}/decisions/{event_id}")
    first.click("#approve")
    first.wait_for_url(re.compile(r"\?answered=approve$"))
    second.click("#approve")
    second.locator("#answer-error").wait_for()
    assert "already answered elsewhere by ana" in second.locator("#answer-error").inner_text()
    app = console.decision(event_id).event.notification.app
    assert len(console.syncs(app)) == 1
    assert len([r for r in audit(console.drift, event_id) if r.kind == "approval"]) == 1


def test_the_keyboard_alone_can_sign_in_and_approve(console: Console) -> None:
    page = console.page()
    event_id = console.waiting()
    page.goto(f"{console.url}/decisions/{event_id}")
    tab_to(page, "approver")
    page.keyboard.type("kim")
    tab_to(page, "token")
    page.keyboard.type(APPROVALS)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{console.url}/decisions/{event_id}")
    tab_to(page, "approve-reason")
    page.keyboard.type("approved from the keyboard")
    tab_to(page, "approve")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"\?answered=approve$"))
    after = console.decision(event_id)
    assert after.approval is not None and after.approval.approver == "kim"


def test_axe_finds_no_serious_or_critical_violation(console: Console) -> None:
    if not AXE.exists():
        message = f"{AXE} is missing: run `make browser-deps` (npm axe-core, pinned; .ci/run does this)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    import hashlib

    source = AXE.read_bytes()
    assert hashlib.sha256(source).hexdigest() == AXE_SHA256
    page = console.page()
    console.login(page)
    event_id = console.waiting()
    found = {}
    for path in ("/", f"/decisions/{event_id}", "/decisions", "/login"):
        page.goto(console.url + path)
        page.evaluate(source.decode())  # through the DevTools protocol: the page's CSP stays as it is
        violations = page.evaluate("async () => (await axe.run(document)).violations.map("
                                   "v => ({id: v.id, impact: v.impact, nodes: v.nodes.length}))")
        found[path] = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert found == {path: [] for path in found}, json.dumps(found, indent=1)


def test_hostile_text_never_executes_in_the_queue_or_the_decision_page(console: Console) -> None:
    injection = _scenario(tag="injection")
    console.stack.sandbox.activate(injection["id"])
    visible = post(console.drift, injection["notification"])
    wait_until(lambda: console.decision(visible).final, 30, "the injection scenario decided", console.drift.proc)
    planted = [decision(900 + n, app=f"hostile-{n}", text=text) for n, text in enumerate(CORPUS)]
    off_loop(plant(console.drift.state_dir / "drift.sqlite", planted))
    page = console.page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.add_init_script("window.__violations = [];"
                         "document.addEventListener('securitypolicyviolation', e => "
                         "window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));")
    console.login(page)
    for path in ["/", "/decisions", f"/decisions/{visible}", *(f"/decisions/{d.event.event_id}" for d in planted)]:
        page.goto(console.url + path)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned") is None, path
        assert page.evaluate("window.__violations") == [], path
    page.goto(f"{console.url}/decisions/{planted[0].event.event_id}")
    assert CORPUS[0] in page.locator("#reasoning").inner_text()  # shown as text
    assert dialogs == []
    report = console.decision(visible).report
    assert report is not None
    texts = [c.after for d in report.drifts for c in d.changes if isinstance(c.after, str) and not c.redacted
             and len(c.after) > 40]
    assert texts, "the injection scenario drifts a text value"
    page.goto(f"{console.url}/decisions/{visible}")
    shown = page.locator("main").inner_text()
    for text in texts:
        assert text.split("\n")[0][:30] in shown  # the scenario's text is on the page, as text


async def plant(db: Path, decisions: list[Decision]) -> None:
    store = EventStore(db)
    await store.open()
    try:
        for d in decisions:
            await store.accept(d.event, d.updated_at, join=False)
            await store.save(d)
    finally:
        await store.close()


def audit(drift: DriftProc, event_id: str) -> list:
    async def read() -> list:
        log = AuditLog(drift.state_dir / "drift.sqlite")
        await log.open()
        try:
            assert (await log.verify()).ok
            return await log.records(event_id)
        finally:
            await log.close()

    return off_loop(read())


def off_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on its own loop in a thread: Playwright's sync API holds this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result(timeout=30)


def tab_to(page: object, element_id: str, most: int = 60) -> None:
    """Press Tab until the element with this id has the focus (bounded: a page with no way there fails)."""
    for _ in range(most):
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} was not reached with {most} Tab presses")
