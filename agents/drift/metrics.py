"""Prometheus metrics of the drift agent (its own registry, served at GET /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class DriftMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "driftwise_decisions", "Decisions reached, by final action and mode", ["action", "mode"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "driftwise_decision_latency_seconds", "Time from webhook receipt to final verdict",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 60),
            registry=self.registry,
        )
        self.failures = Counter(
            "driftwise_decision_failures", "Decisions that ended in a fallback escalation, by kind", ["kind"],
            registry=self.registry,
        )
        self.pending_approvals = Gauge(
            "driftwise_pending_approvals", "Decisions waiting for a human", registry=self.registry,
        )
        self.oldest_pending_approval = Gauge(
            "driftwise_oldest_pending_approval_age_seconds",
            "Seconds since the event of the oldest decision still waiting for a human was received (0: none waits)",
            registry=self.registry,
        )
        self.applied = Counter(
            "driftwise_applied_actions", "Argo CD writes made (or, in shadow, that would have been), by kind and mode",
            ["kind", "mode", "executed"], registry=self.registry,
        )
        self.webhooks = Counter(
            "driftwise_webhooks", "Webhook requests by outcome", ["outcome"], registry=self.registry,
        )

        self.rereads = Counter(
            "driftwise_rereads",
            "Re-reads of governed applications still OutOfSync, by outcome (changed, expired = decided as a new "
            "event)",
            ["outcome"], registry=self.registry,
        )

        self.outcomes = Counter(
            "driftwise_outcomes",
            "Outcomes recorded, by project, decided action, outcome and agreement (the agreement ratio of a project "
            "and action: agrees over agrees + disagrees + possibly_unsafe)",
            ["project", "action", "outcome", "agreement"], registry=self.registry,
        )

        # Replicas (issue 17). The alerts in deploy/monitoring/ read them; keep the names.
        self.audit_sink_failures = Counter(
            "driftwise_audit_checkpoint_sink_failures",
            "Signed audit checkpoints the checkpoint sink (drift.audit_log_url) did not take", registry=self.registry,
        )
        self.leases_held = Gauge(
            "driftwise_leases_held", "Decision leases this replica holds now", registry=self.registry,
        )
        self.notifications = Counter(
            "driftwise_notifications",
            "Messages to notify.webhook_url, by message (approval_needed, reminder) and outcome (sent, failed, "
            "refused, skipped)", ["message", "outcome"], registry=self.registry,
        )
        self.approvals_expired = Counter(
            "driftwise_approvals_expired",
            "Decisions whose wait for a human ended unanswered (drift.approval_timeout_h)",
            registry=self.registry,
        )
        # agents.drift.agreement_gauges sets these from the state (the same numbers as the report's per_project_action)
        self.agreement_ratio = Gauge(
            "driftwise_agreement_ratio",
            "Agreement of the last 7 days' decisions with their outcomes (agrees / judged), by project and decided "
            "action; projects past the 50 with most judged outcomes are summed as project=\"_other\"",
            ["project", "action"], registry=self.registry,
        )
        self.agreement_judged = Gauge(
            "driftwise_agreement_judged", "Judged outcomes behind driftwise_agreement_ratio, by project and action",
            ["project", "action"], registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
