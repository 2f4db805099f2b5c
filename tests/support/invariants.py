"""The record is the truth: one checker of DESIGN's invariants, from outside, after any fault.

For the events a case had answered 202, against three records that do not share code:
- the sandbox's write record (what Argo CD was asked to do; each write names its event through the
  sync's `infos` / the status annotation, else through its application, which only one event of
  the case concerns),
- the drift agent's decisions API,
- its audit log, read and verified with `driftwise audit show --json` / `driftwise audit verify`.

It checks:
- nothing accepted is lost: every event reaches a settled state (final, or waiting for a human);
- nothing ends twice: one `decision` audit record per event, carrying the verdict the decision shows;
- every write Argo CD carried out for an event is recorded by that event's decision, and every
  write a decision records as executed is among Argo CD's writes (compared as a multiset of
  kinds: dry run, sync, status annotation, ignoreDifferences patch); a write Argo CD refused
  leaves the decision with an error;
- the audit holds one `apply` entry per write the decision records (the writes listed in its
  `apply`/`expiry` records equal the decision's).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field

from protocol.models import AppliedAction, AuditRecord, Decision, DecisionState
from tests.support.fault_system import FaultSystem, SandboxWrite

EVENT_INFO = "driftwise-event"
STATUS_ANNOTATION = "driftwise.io/status"
# an AppliedAction kind -> the Argo CD write it stands for (the others write nothing)
RECORDED_AS = {"dry_run_sync": "dry_run", "sync": "sync", "annotate": "annotate",
               "ignore_differences": "spec_patch", "remove_ignore_differences": "spec_patch"}


def write_kind(write: SandboxWrite) -> str:
    if write.method == "POST" and write.path.endswith("/sync"):
        return "dry_run" if write.body.get("dryRun") else "sync"
    patch = _patch(write)
    return "spec_patch" if "spec" in patch else "annotate"


def write_event(write: SandboxWrite) -> str | None:
    """The event a write names itself, if it does."""
    if write.method == "POST":
        for info in write.body.get("infos") or []:
            if isinstance(info, dict) and info.get("name") == EVENT_INFO:
                return str(info.get("value"))
        return None
    raw = ((_patch(write).get("metadata") or {}).get("annotations") or {}).get(STATUS_ANNOTATION)
    try:
        status = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return str(status["event"]) if isinstance(status, dict) and "event" in status else None


def _patch(write: SandboxWrite) -> dict:
    try:
        patch = json.loads(write.body.get("patch") or "{}")
    except (TypeError, ValueError):
        return {}
    return patch if isinstance(patch, dict) else {}


def settled(decision: Decision | None) -> bool:
    """Final, or waiting for a human: nothing more happens to it without one."""
    return decision is not None and (decision.final or decision.state == DecisionState.AWAITING_APPROVAL)


def recorded_writes(actions: list[AppliedAction]) -> Counter[str]:
    return Counter(RECORDED_AS[a.kind] for a in actions if a.executed and a.kind in RECORDED_AS)


@dataclass
class Outcome:
    case: str
    accepted: int
    lost: list[str] = field(default_factory=list)
    terminal_twice: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    """Argo CD's writes against the decisions' records."""
    audit_mismatches: list[str] = field(default_factory=list)
    """The decisions against their audit records (decision record, verdict, one `apply` per write)."""
    audit_verified: bool = False
    audit_detail: str = ""
    states: Counter[str] = field(default_factory=Counter)

    @property
    def holds(self) -> bool:
        broken = self.lost or self.terminal_twice or self.mismatches or self.audit_mismatches
        return not broken and self.audit_verified

    @property
    def mismatched_events(self) -> int:
        return len({m.split(" ", 1)[0] for m in self.mismatches + self.audit_mismatches})

    def line(self) -> str:
        return (f"{self.case}: accepted={self.accepted} lost={len(self.lost)} "
                f"terminal_twice={len(self.terminal_twice)} record_write_mismatches={len(self.mismatches)} "
                f"audit_mismatches={len(self.audit_mismatches)} (in {self.mismatched_events} events) "
                f"audit_verify={'ok' if self.audit_verified else 'FAILED'} states={dict(self.states)}")

    def report(self) -> str:
        parts = [self.line()]
        parts += [f"  lost: {e}" for e in self.lost[:10]]
        parts += [f"  terminal twice: {e}" for e in self.terminal_twice[:10]]
        parts += [f"  mismatch: {m}" for m in self.mismatches[:10]]
        parts += [f"  audit: {m}" for m in self.audit_mismatches[:10]]
        if not self.audit_verified:
            parts.append(f"  audit verify: {self.audit_detail}")
        return "\n".join(parts)


async def settle(system: FaultSystem, event_ids: list[str], timeout_s: float) -> None:
    """Wait, bounded, until every event is settled: each through the decisions API's long poll (the drift
    agent answers once the decision is final), so waiting costs the drift agent nothing while it works."""
    gate = asyncio.Semaphore(32)
    deadline = time.monotonic() + timeout_s

    async def one(event_id: str) -> None:
        async with gate:
            while (left := deadline - time.monotonic()) > 0:
                # short polls: a decision waiting for a human is settled here, though not `final` to the API
                if settled(await system.decision(event_id, wait_s=max(0.1, min(left, 5.0)))):
                    return
                await asyncio.sleep(min(0.2, max(0.0, left)))  # not known yet (a restart): ask again

    await asyncio.gather(*(one(e) for e in event_ids))


async def check_invariants(system: FaultSystem, case: str, accepted: dict[str, str], settle_s: float = 60
                           ) -> Outcome:
    """Release every fault, wait for `accepted` (event id -> application, each answered 202) to settle, then
    judge the three records; prints the outcome's line."""
    await system.clear_faults()
    await settle(system, list(accepted), settle_s)
    decisions = await system.decisions(event_ids=list(accepted))
    writes = await system.writes()
    records, verified, detail = await system.audit()
    outcome = judge(case, accepted, decisions, writes, records)
    outcome.audit_verified, outcome.audit_detail = verified, detail
    print(outcome.line())
    return outcome


def judge(case: str, accepted: dict[str, str], decisions: dict[str, Decision], writes: list[SandboxWrite],
          records: list[AuditRecord]) -> Outcome:
    """The invariants over the three records, for the events of one case (the audit chain's own check aside)."""
    outcome = Outcome(case, len(accepted))
    outcome.lost = [e for e in accepted if not settled(decisions.get(e))]
    outcome.states = Counter(decisions[e].state.value if e in decisions else "missing" for e in accepted)
    sent = _attribute(accepted, writes, outcome)
    audited: dict[str, list[AuditRecord]] = {}
    for record in records:
        audited.setdefault(record.event_id, []).append(record)
    for event_id, app in accepted.items():
        decision = decisions.get(event_id)
        if decision is not None:  # else counted as lost
            _judge_event(f"{event_id} ({app})", decision, sent[event_id], audited.get(event_id, []), outcome)
    return outcome


def _attribute(accepted: dict[str, str], writes: list[SandboxWrite], outcome: Outcome) -> dict[str, list[SandboxWrite]]:
    """Each write to an application of the case, under the event it names (or its application's only event)."""
    by_app: dict[str, list[str]] = {}
    for event_id, app in accepted.items():
        by_app.setdefault(app, []).append(event_id)
    sent: dict[str, list[SandboxWrite]] = {e: [] for e in accepted}
    for write in writes:
        events = by_app.get(write.application or "")
        if events is None:
            continue  # another case's application
        event_id = write_event(write) or (events[0] if len(events) == 1 else None)
        if event_id not in sent:
            outcome.mismatches.append(f"write #{write.seq} {write.method} {write.path} names event {event_id}, "
                                      "which is no accepted event of this case")
            continue
        sent[event_id].append(write)
    return sent


def _judge_event(name: str, decision: Decision, sent: list[SandboxWrite], mine: list[AuditRecord],
                 outcome: Outcome) -> None:
    decided = [r for r in mine if r.kind == "decision"]
    if len(decided) > 1:
        outcome.terminal_twice.append(f"{name}: {len(decided)} decision records")
    elif not decided and settled(decision):
        outcome.audit_mismatches.append(f"{name}: {decision.state.value} without a decision record")
    if decided and decision.verdict is not None and \
            (decided[0].payload.get("verdict") or {}).get("jws") != decision.verdict.jws:
        outcome.audit_mismatches.append(f"{name}: the decision shows another verdict than its audit record")
    argo = Counter(write_kind(w) for w in sent if w.accepted)
    recorded = recorded_writes(decision.applied)
    if argo != recorded:
        action = decision.verdict.verdict.action.value if decision.verdict else None
        outcome.mismatches.append(
            f"{name}: Argo CD carried out {dict(argo)} but the decision ({decision.state.value}, {action}, "
            f"error {decision.error!r}) records {dict(recorded)}")
    refused = [w for w in sent if not w.accepted]
    if refused and decision.error is None and decision.state != DecisionState.FAILED:
        outcome.mismatches.append(f"{name}: Argo CD refused {[write_kind(w) for w in refused]} "
                                  f"(HTTP {[w.status for w in refused]}) but the decision shows no error")
    applies = [AppliedAction.model_validate(a) for r in mine if r.kind in ("apply", "expiry")
               for a in r.payload.get("applied") or []]
    if recorded_writes(applies) != recorded:
        outcome.audit_mismatches.append(f"{name}: the audit's apply records list {dict(recorded_writes(applies))}, "
                                  f"the decision {dict(recorded)}")
