"""Messages where people are, against a real receiver on loopback: the Slack-compatible message of a decision
waiting for a human, delivered with bounded retries (500s then success, a hanging receiver, one that is down,
a refusal), as durable jobs (a message and a half-time reminder per decision, skipped once it is answered),
and the webhook's URL, a secret, in no log line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from agents.drift.acting.store import ActingStore
from agents.drift.approval_wait import ApprovalWait
from agents.drift.config import NotifyConfig
from agents.drift.database import Database
from agents.drift.metrics import DriftMetrics
from agents.drift.notify import Notifier, WebhookSender
from agents.drift.notify_message import approval_message, console_link
from agents.drift.sqlite import SqliteDatabase
from agents.drift.store import EventStore
from driftwise.cli.drift_agent import drift_config
from driftwise.settings import ConfigError, load_settings
from protocol.models import Decision, DecisionState, FieldChange
from tests.console.decisions import T0, decision
from tests.deploy.test_tokens import ROLES
from tests.support.env import clear_driftwise_environment
from tests.support.webhook_receiver import SECRET_PATH, Receiver, dead_url

CONSOLE = "https://driftwise.example.com"
LINK = f"{CONSOLE}/console/decisions/ev-000001"
SLACK_BLOCKS = {"header", "section", "context", "actions", "divider", "image", "input", "rich_text", "video", "file"}
BOUND_S = 10.0
"""Bounds every wait of this module, far above the deadlines under test."""


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture):
    """Every test here: at debug level, for every logger (httpx's and httpcore's included), no log line
    carries the webhook URL's secret path."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert SECRET_PATH not in text and "s3cr3t" not in text, (record.name, text)


def sender(url: str, **over: float) -> WebhookSender:
    cfg = {"timeout_s": 1.0, "max_attempts": 4, "backoff_s": 0.01, "deadline_s": 5.0, **over}
    return WebhookSender(NotifyConfig(webhook_url=SecretStr(url), **cfg))


def waiting(text: str = "an operator raised replicas") -> Decision:
    return decision(1, text=text)


def message() -> object:
    return approval_message(waiting(), "approval_needed", LINK, T0 + timedelta(hours=24))


def test_the_message_is_slack_json_with_the_drift_the_action_the_confidence_and_the_link() -> None:
    body = approval_message(waiting(), "approval_needed", LINK, T0 + timedelta(hours=24)).model_dump(
        mode="json", exclude_none=True)
    assert body["text"].startswith("Driftwise needs a human: payments-api") and LINK in body["text"]
    assert {b["type"] for b in body["blocks"]} <= SLACK_BLOCKS
    header, section = body["blocks"][0], body["blocks"][1]
    assert header["text"]["type"] == "plain_text" and len(header["text"]["text"]) <= 150
    assert section["text"]["text"] == ("*Drift:* apps/Deployment payments/payments-api /spec/replicas: 3 → 12 "
                                       "(+1 more change)")
    fields = "\n".join(f["text"] for f in section["fields"])
    assert "*Proposed action*\nenforce" in fields and "*Confidence*\n70% (threshold 80%)" in fields
    assert "2026-11-21 16:30 UTC" in fields
    [button] = body["blocks"][-1]["elements"]
    assert button["type"] == "button" and button["url"] == LINK
    assert console_link(CONSOLE + "/", "ev-000001") == LINK
    assert console_link(CONSOLE, "a/b c") == f"{CONSOLE}/console/decisions/a%2Fb%20c"
    reminder = approval_message(waiting(), "reminder", LINK, T0 + timedelta(hours=24)).model_dump(mode="json")
    assert reminder["text"].startswith("Reminder: Driftwise needs a human")


def test_a_drifted_value_cannot_mention_a_channel_or_hide_a_link() -> None:
    hostile = "<!channel> <https://evil.example|open me> & more"
    d = waiting(hostile)
    assert d.report is not None
    changes = [FieldChange(path="/data/note", op="replace", before="x", after=hostile)]
    d = d.model_copy(update={"report": d.report.model_copy(update={"drifts": [
        d.report.drifts[0].model_copy(update={"changes": changes})]})})
    body = approval_message(d, "approval_needed", LINK, T0).model_dump_json()
    assert "<!channel>" not in body and "<https://evil" not in body
    assert "&lt;!channel&gt; &lt;https://evil.example|open me&gt; &amp; more" in body


async def test_a_receiver_that_answers_gets_the_message_once() -> None:
    async with Receiver().serve() as rx:
        send = sender(rx.url)
        delivery = await send.send(message())
        await send.aclose()
    assert (delivery.outcome, delivery.attempts) == ("sent", 1)
    assert rx.content_types == ["application/json"] and len(rx.bodies) == 1
    assert rx.bodies[0]["blocks"][-1]["elements"][0]["url"] == LINK


async def test_500s_then_success_is_retried_until_it_is_taken() -> None:
    async with Receiver([500, 503, 429]).serve() as rx:
        send = sender(rx.url)
        delivery = await send.send(message())
        await send.aclose()
    assert (delivery.outcome, delivery.attempts) == ("sent", 4)
    assert len(rx.bodies) == 4 and all(b == rx.bodies[0] for b in rx.bodies)  # the same message each time


async def test_attempts_are_bounded_and_a_refusal_is_not_retried() -> None:
    async with Receiver([500] * 10).serve() as rx:
        send = sender(rx.url, max_attempts=3)
        failed = await send.send(message())
        await send.aclose()
    assert (failed.outcome, failed.attempts) == ("failed", 3) and "HTTP 500" in failed.detail
    assert len(rx.bodies) == 3
    async with Receiver([404, 200]).serve() as rx:  # Slack's no_service: a revoked or mistyped webhook
        send = sender(rx.url)
        refused = await send.send(message())
        await send.aclose()
    assert (refused.outcome, refused.attempts, refused.detail) == ("refused", 1, "HTTP 404")


async def test_a_receiver_that_hangs_is_given_up_within_the_bound() -> None:
    async with Receiver(hang=True).serve() as rx:
        send = sender(rx.url, timeout_s=0.2, max_attempts=20, deadline_s=1.0)
        async with asyncio.timeout(BOUND_S):
            delivery = await send.send(message())
        await send.aclose()
    assert delivery.outcome == "failed" and "notify.deadline_s=1s passed" in delivery.detail
    assert "ReadTimeout" in delivery.detail and 1 <= len(rx.bodies) <= delivery.attempts


async def test_a_receiver_that_is_down_is_given_up_after_its_attempts() -> None:
    send = sender(dead_url(), max_attempts=3)
    async with asyncio.timeout(BOUND_S):
        delivery = await send.send(message())
    await send.aclose()
    assert (delivery.outcome, delivery.attempts) == ("failed", 3) and "ConnectError" in delivery.detail


# --- the durable jobs -----------------------------------------------------------------------------


class Parts:
    def __init__(self, db: Database) -> None:
        self.store = EventStore(db)
        self.jobs = ActingStore(db)
        self.metrics = DriftMetrics()
        self.wait = ApprovalWait(self.store, self.jobs, _NoAudit(), timedelta(hours=24), notify=True,
                                 metrics=self.metrics)

    def notifier(self, url: str, **over: float) -> Notifier:
        return Notifier(sender(url, **over), self.store, self.jobs, lambda e: console_link(CONSOLE, e), self.metrics)

    async def put(self, d: Decision) -> Decision:
        await self.store.accept(d.event, d.updated_at, join=False)
        await self.wait.waiting(d, T0)  # as the recorder does, before the decision is saved waiting
        await self.store.save(d)
        return d

    def count(self, message: str, outcome: str) -> float:
        return self.metrics.notifications.labels(message=message, outcome=outcome)._value.get()


class _NoAudit:
    async def append(self, event_id: str, kind: object, payload: dict) -> None:
        raise AssertionError("messages are not audited")

    async def records(self, event_id: str | None = None) -> list:
        return []


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    db = await SqliteDatabase.open(tmp_path / "drift.sqlite")
    await db.migrate()
    yield Parts(db)
    await db.close()


async def test_each_waiting_decision_gets_its_message_then_a_reminder_at_half_time(parts: Parts) -> None:
    d = await parts.put(waiting())
    async with Receiver().serve() as rx:
        notifier = parts.notifier(rx.url)
        assert [x.outcome for x in await notifier.tick(T0) if x] == ["sent"]
        assert await notifier.tick(T0 + timedelta(hours=11, minutes=59)) == []  # sent once; the reminder not due
        assert [x.outcome for x in await notifier.tick(T0 + timedelta(hours=12)) if x] == ["sent"]
        assert await notifier.tick(T0 + timedelta(hours=30)) == []
        await notifier.aclose()
    first, reminder = rx.bodies
    assert first["text"].startswith("Driftwise needs a human") and reminder["text"].startswith("Reminder:")
    assert f"{CONSOLE}/console/decisions/{d.event.event_id}" in first["text"]
    assert parts.count("approval_needed", "sent") == 1 and parts.count("reminder", "sent") == 1


async def test_an_answered_decision_gets_no_reminder_and_one_being_recorded_waits(parts: Parts) -> None:
    answered = await parts.put(waiting())
    recording = decision(2, state=DecisionState.DECIDING)
    await parts.put(recording)
    async with Receiver().serve() as rx:
        notifier = parts.notifier(rx.url)
        await notifier.tick(T0)
        assert len(rx.bodies) == 1  # the one still being recorded is left for the next tick
        await parts.store.save(answered.model_copy(update={"state": DecisionState.DONE}))
        await parts.store.save(recording.model_copy(update={"state": DecisionState.AWAITING_APPROVAL}))
        await notifier.tick(T0 + timedelta(hours=12))
        await notifier.aclose()
    assert [b["text"].split(":")[0] for b in rx.bodies] == ["Driftwise needs a human"] * 2 + ["Reminder"]
    assert recording.event.event_id in rx.bodies[1]["text"] and recording.event.event_id in rx.bodies[2]["text"]
    assert parts.count("reminder", "skipped") == 1


async def test_a_message_given_up_is_counted_and_not_sent_again(parts: Parts) -> None:
    await parts.put(waiting())
    notifier = parts.notifier(dead_url(), max_attempts=2)
    async with asyncio.timeout(BOUND_S):
        [delivery] = await notifier.tick(T0)
    await notifier.aclose()
    assert delivery is not None and delivery.outcome == "failed"
    again = parts.notifier(dead_url())
    assert await again.tick(T0) == []
    await again.aclose()
    assert parts.count("approval_needed", "failed") == 1
    [remaining] = [j.kind for j in await parts.jobs.pending() if j.kind != "expire_approval"]
    assert remaining == "remind_approval"


class Killed(Exception):
    """Stands for the process dying (kill -9 is the fault suite's; here, only the order of writes matters)."""


class _CrashOnFinish(ActingStore):
    """The jobs store of a process that dies right after the receiver took the message."""

    async def finish(self, job_id: int, *, ok: bool, error: str | None = None, retry: bool = False) -> None:
        raise Killed("before the job was marked done")


async def test_a_crash_after_sending_sends_the_message_again_at_least_once(parts: Parts) -> None:
    await parts.put(waiting())
    async with Receiver().serve() as rx:
        dying = Notifier(sender(rx.url), parts.store, _CrashOnFinish(parts.store.db), lambda e: LINK, parts.metrics)
        with pytest.raises(Killed):
            await dying.tick(T0)
        await dying.aclose()
        restarted = parts.notifier(rx.url)
        assert [x.outcome for x in await restarted.tick(T0) if x] == ["sent"]
        await restarted.aclose()
    assert len(rx.bodies) == 2 and rx.bodies[0] == rx.bodies[1]


def test_the_settings_reach_the_drift_agent_and_a_bad_url_is_named(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    clear_driftwise_environment(monkeypatch)
    base = {"state_dir": tmp_path, "drift": {"webhook_token": "hook", "approvals_token": "ok"}, **ROLES}
    off = drift_config(load_settings(secrets_dir=tmp_path, **base))
    assert off.notify is None and off.approval_timeout_h == 24.0 and off.console_url is None
    on = drift_config(load_settings(secrets_dir=tmp_path, **base, notify={"webhook_url": "https://hooks.example/x"},
                                    console={"public_url": CONSOLE}))
    assert on.notify is not None and on.notify.webhook_url.get_secret_value() == "https://hooks.example/x"
    assert on.console_url == CONSOLE and "hooks.example" not in repr(on)  # a secret: masked in any repr
    for section, value, name in (("notify", {"webhook_url": "hooks.slack.com/services/x"}, "notify.webhook_url"),
                                 ("notify", {"webhook_url": "https://h:99999/s3cr3t"}, "notify.webhook_url"),
                                 ("console", {"public_url": "driftwise.example.com"}, "console.public_url")):
        with pytest.raises(ConfigError, match=rf"setting `{name}`.*must be an http\(s\) URL") as refused:
            load_settings(secrets_dir=tmp_path, **base, **{section: value})
        assert "s3cr3t" not in str(refused.value)  # the refusal does not quote the secret
    with pytest.raises(ConfigError, match=r"drift\.approval_timeout_h"):
        load_settings(secrets_dir=tmp_path, **{**base, "drift": {**base["drift"], "approval_timeout_h": 0}})

