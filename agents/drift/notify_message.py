"""The message a human gets where they are: Slack's incoming-webhook JSON (`text` + Block Kit `blocks`).

Typed after Slack's documented shapes and limits (https://api.slack.com/reference/block-kit/blocks), so a
message that Slack would refuse (too long a header, too many fields) is cut here, not refused there. Any
receiver that takes Slack's JSON (Mattermost, Rocket.Chat, a Teams or Google Chat bridge) reads `text`.

Everything drawn from the decision (application and resource names, drifted values, reasons) is data: it
is escaped as Slack's mrkdwn requires (`&`, `<`, `>`), so that a drifted value cannot mention a channel
(`<!channel>`), hide a link (`<https://…|text>`) or break the message's markup.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from agents.drift.console.views import WHY_LABELS, ref_label, show
from agents.drift.console.web import PREFIX
from protocol.models import Decision

HEADER_CHARS = 150
SECTION_CHARS = 3000
FIELD_CHARS = 2000
_VALUE_CHARS = 80
"""A drifted value in the one-line summary is cut to this many characters (the console shows it whole)."""

MessageKind = Literal["approval_needed", "reminder"]


class _Slack(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlainText(_Slack):
    type: Literal["plain_text"] = "plain_text"
    text: str = Field(min_length=1, max_length=SECTION_CHARS)


class Mrkdwn(_Slack):
    type: Literal["mrkdwn"] = "mrkdwn"
    text: str = Field(min_length=1, max_length=SECTION_CHARS)


class Header(_Slack):
    type: Literal["header"] = "header"
    text: PlainText


class Section(_Slack):
    type: Literal["section"] = "section"
    text: Mrkdwn | None = None
    fields: list[Mrkdwn] | None = Field(default=None, max_length=10)


class Context(_Slack):
    type: Literal["context"] = "context"
    elements: list[Mrkdwn] = Field(min_length=1, max_length=10)


class Button(_Slack):
    type: Literal["button"] = "button"
    text: PlainText
    url: str = Field(max_length=3000)
    action_id: str = Field(max_length=255)
    style: Literal["primary", "danger"] | None = None


class Actions(_Slack):
    type: Literal["actions"] = "actions"
    elements: list[Button] = Field(min_length=1, max_length=25)


Block = Annotated[Header | Section | Context | Actions, Field(discriminator="type")]


class WebhookMessage(_Slack):
    """An incoming-webhook body: `text` is the notification's and the fallback's text, `blocks` the layout."""

    text: str = Field(min_length=1, max_length=SECTION_CHARS)
    blocks: list[Block] = Field(max_length=50)


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: the three characters it reads as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def console_link(base_url: str, event_id: str) -> str:
    """The decision's page in the console, under the drift agent's URL as people reach it (console.public_url)."""
    return f"{base_url.rstrip('/')}{PREFIX}/decisions/{quote(event_id, safe='')}"


def drift_line(decision: Decision) -> str:
    """The drift in one line: the first change of the first drifted resource, and how many more there are."""
    n = decision.event.notification
    report = decision.report
    changes = [(d.ref, c) for d in report.drifts for c in d.changes] if report else []
    if not changes:
        why = f" ({decision.error})" if decision.error else ""
        return f"the drift of {n.app} could not be read{why}"
    ref, first = changes[0]
    values = (f"{show(first.before, _VALUE_CHARS)} → {show(first.after, _VALUE_CHARS)}" if first.op == "replace"
              else f"{first.op} {show(first.after if first.op == 'add' else first.before, _VALUE_CHARS)}")
    more = len(changes) - 1
    resources = len({r.key for r, _ in changes})
    tail = (f" (+{more} more change{'s' if more > 1 else ''}"
            + (f" in {resources} resources" if resources > 1 else "") + ")") if more else ""
    return f"{ref_label(ref)} {first.path}: {values}{tail}"


def _why(decision: Decision) -> str | None:
    """The first reason the verdict gives for asking a human (the console's label when it has one)."""
    if decision.verdict is None:
        return None
    for reason in decision.verdict.verdict.reasons:
        if reason.code != "policy.proposal":
            return WHY_LABELS.get(reason.code, reason.message)
    return None


def approval_message(decision: Decision, kind: MessageKind, link: str, expires_at: datetime) -> WebhookMessage:
    """The message of a decision waiting for a human: the drift in one line, the proposed action, its confidence,
    when the wait ends, and the link to its console page."""
    n = decision.event.notification
    verdict = decision.verdict.verdict if decision.verdict is not None else None
    proposed = verdict.action.value if verdict else "escalate"
    confidence = f"{verdict.confidence:.0%} (threshold {verdict.threshold:.0%})" if verdict else "none"
    expires = expires_at.strftime("%Y-%m-%d %H:%M UTC")
    title = ("Reminder: " if kind == "reminder" else "") + f"Driftwise needs a human: {n.app}"
    line = drift_line(decision)
    text = _cut(escape(f"{title} ({n.project}) — {line} — proposed {proposed}, confidence {confidence}; "
                       f"expires {expires}: {link}"), SECTION_CHARS)
    fields = [Mrkdwn(text=_cut(f"*{label}*\n{escape(value)}", FIELD_CHARS)) for label, value in (
        ("Proposed action", proposed), ("Confidence", confidence), ("Project", n.project),
        ("Mode", decision.mode), ("Expires", expires + (" (half the wait is over)" if kind == "reminder" else "")))]
    blocks: list[Block] = [
        Header(text=PlainText(text=_cut(title, HEADER_CHARS))),
        Section(text=Mrkdwn(text=_cut(f"*Drift:* {escape(line)}", SECTION_CHARS)), fields=fields),
    ]
    why = _why(decision)
    if why:
        blocks.append(Context(elements=[Mrkdwn(text=_cut(f"Why a human: {escape(why)}", SECTION_CHARS))]))
    blocks.append(Actions(elements=[Button(text=PlainText(text="Open the decision"), url=link, style="primary",
                                           action_id="driftwise-open-decision")]))
    return WebhookMessage(text=text, blocks=blocks)
