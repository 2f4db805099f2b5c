# Tests of the guardrail policy: `driftwise policy test policies/` (regopy has no `opa test`).
# regopy crashes on `with input as ...` over this policy, so a test takes its input from the rule
# `input_<name>` beside `test_<name>`: the runner sets it as the input, then evaluates the test.
package driftwise.guardrail_test

import data.driftwise.guardrail
import rego.v1

facts := {
	"application": "payments",
	"project": "prod",
	"namespaces": ["payments"],
	"namespace_labels": {"payments": {}},
	"kinds": ["Deployment"],
	"changed_paths": ["/spec/replicas"],
	"sync_allowed_now": true,
	"freeze_active": false,
}

scope := {"resources": [{"ref": {"kind": "Deployment", "name": "api", "namespace": "payments"}, "paths": ["/spec/replicas"]}]}

rec(agent, domain, action, confidence) := {
	"kind": "recommendation",
	"event_id": "evt-1",
	"agent": agent,
	"domain": domain,
	"action": action,
	"confidence": confidence,
	"findings": [],
	"evidence_refs": [],
	"scope": null,
}

proposal(action, confidence) := object.union(rec("drift", "operational", action, confidence), {"scope": scope})

security_enforce := rec("security", "security", "enforce", 0.95)

# Top-level keys replaced, never merged: OPA's object.union merges nested objects, regopy's replaces
# them, so the base loses the overridden keys first and both engines build the same input.
with_input(overrides) := object.union(object.remove(base_input, object.keys(overrides)), overrides)

base_input := {
	"event_id": "evt-1",
	"threshold": 0.8,
	"proposal": proposal("allow", 0.9),
	"specialists": [],
	"discarded": [],
	"expected_specialists": [],
	"missing_specialists": [],
	"second_opinion": null,
	"facts": facts,
}

has_reason(v, code) if {
	some r in v.reasons
	r.code == code
}

input_confident_proposal_is_followed := with_input({})

test_confident_proposal_is_followed if {
	v := guardrail.verdict
	v.action == "allow"
	v.requires_approval == false
	v.scope == scope
	has_reason(v, "policy.proposal")
}

input_low_confidence_needs_a_human := with_input({"proposal": proposal("defer", 0.6)})

test_low_confidence_needs_a_human if {
	v := guardrail.verdict
	v.action == "defer"
	v.requires_approval == true
	has_reason(v, "policy.threshold")
}

input_threshold_comes_from_input := with_input({"threshold": 0.95})

test_threshold_comes_from_input if {
	v := guardrail.verdict
	v.requires_approval == true
}

input_security_enforce_is_binding := with_input({"specialists": [security_enforce]})

test_security_enforce_is_binding if {
	v := guardrail.verdict
	v.action == "enforce"
	v.allowed_actions == ["enforce", "escalate"]
	v.scope == null
	has_reason(v, "policy.security_enforce_binding")
}

input_security_enforce_beats_a_specialist_escalate := x if {
	esc := rec("compliance", "compliance", "escalate", 0.9)
	x := with_input({"specialists": [esc, security_enforce]})
}

test_security_enforce_beats_a_specialist_escalate if {
	v := guardrail.verdict
	v.action == "enforce"
}

input_security_enforce_refused_by_windows_escalates := x if {
	closed := object.union(facts, {"sync_allowed_now": false, "freeze_active": true})
	x := with_input({"specialists": [security_enforce], "facts": closed})
}

test_security_enforce_refused_by_windows_escalates if {
	v := guardrail.verdict
	v.action == "escalate"
	v.requires_approval == true
	v.allowed_actions == ["enforce", "escalate"]
	has_reason(v, "policy.sync_window_refuses")
}

input_low_confidence_security_enforce_still_binding := x if {
	weak := rec("security", "security", "enforce", 0.5)
	x := with_input({"specialists": [weak]})
}

test_low_confidence_security_enforce_still_binding if {
	v := guardrail.verdict
	v.action == "enforce"
	v.requires_approval == true
}

input_compliance_enforce_is_not_binding := x if {
	ce := rec("compliance", "compliance", "enforce", 0.9)
	x := with_input({"specialists": [ce]})
}

test_compliance_enforce_is_not_binding if {
	v := guardrail.verdict
	v.action == "allow"
}

input_specialist_escalate_escalates := x if {
	esc := rec("compliance", "compliance", "escalate", 0.9)
	x := with_input({"specialists": [esc]})
}

test_specialist_escalate_escalates if {
	v := guardrail.verdict
	v.action == "escalate"
	v.requires_approval == true
	has_reason(v, "policy.specialist_escalate")
}

input_abstention_changes_nothing := x if {
	abstain := object.union(rec("security", "security", null, 0.9), {"kind": "abstain"})
	x := with_input({"specialists": [abstain]})
}

test_abstention_changes_nothing if {
	v := guardrail.verdict
	v.action == "allow"
	v.requires_approval == false
}

input_enforce_refused_by_windows_escalates := x if {
	closed := object.union(facts, {"sync_allowed_now": false})
	x := with_input({"proposal": proposal("enforce", 0.9), "facts": closed})
}

test_enforce_refused_by_windows_escalates if {
	v := guardrail.verdict
	v.action == "escalate"
}

input_missing_window_fact_refuses_enforce := with_input({"proposal": proposal("enforce", 0.9), "facts": {"application": "a"}})

test_missing_window_fact_refuses_enforce if {
	v := guardrail.verdict
	v.action == "escalate"
}

input_defer_in_a_freeze_is_not_refused := x if {
	closed := object.union(facts, {"sync_allowed_now": false, "freeze_active": true})
	x := with_input({"proposal": proposal("defer", 0.9), "facts": closed})
}

test_defer_in_a_freeze_is_not_refused if {
	v := guardrail.verdict
	v.action == "defer"
}

input_no_proposal_escalates := with_input({"proposal": null})

test_no_proposal_escalates if {
	v := guardrail.verdict
	v.action == "escalate"
	v.requires_approval == true
	has_reason(v, "policy.proposal_missing")
}

input_second_opinion_disagreeing_needs_a_human := x if {
	so := rec("drift", "operational", "enforce", 0.85)
	x := with_input({"second_opinion": so})
}

test_second_opinion_disagreeing_needs_a_human if {
	v := guardrail.verdict
	v.action == "allow"
	v.requires_approval == true
	some r in v.reasons
	r.code == "policy.second_opinion_disagrees"
	contains(r.message, "allow")
	contains(r.message, "enforce")
}

input_second_opinion_agreeing_changes_nothing := x if {
	so := rec("drift", "operational", "allow", 0.85)
	x := with_input({"second_opinion": so})
}

test_second_opinion_agreeing_changes_nothing if {
	v := guardrail.verdict
	v.requires_approval == false
}

input_missing_specialist_needs_a_human := with_input({"expected_specialists": ["security"], "missing_specialists": ["security"]})

test_missing_specialist_needs_a_human if {
	v := guardrail.verdict
	v.requires_approval == true
	has_reason(v, "policy.specialist_missing")
}

input_discarded_recommendation_is_a_reason := x if {
	d := {"role": "specialist", "agent": "mallory", "reason": "unknown_key", "detail": ""}
	x := with_input({"discarded": [d]})
}

test_discarded_recommendation_is_a_reason if {
	v := guardrail.verdict
	has_reason(v, "policy.recommendation_discarded")
}

input_escalate_always_needs_a_human := with_input({"proposal": proposal("escalate", 0.99)})

test_escalate_always_needs_a_human if {
	v := guardrail.verdict
	v.action == "escalate"
	v.requires_approval == true
}

input_reasons_are_ordered_by_weight := x if {
	closed := object.union(facts, {"sync_allowed_now": false})
	x := with_input({"specialists": [security_enforce], "facts": closed})
}

test_reasons_are_ordered_by_weight if {
	v := guardrail.verdict
	v.reasons[0].code == "policy.security_enforce_binding"
	v.reasons[1].code == "policy.sync_window_refuses"
}

unclassified := {
	"rule_id": "pack.unclassified", "domain": "security", "kind": "unclassified", "severity": "medium",
	"message": "Widget/w (widgets.example.com): /spec/mode cannot be classified",
}

security_unclassified := object.union(rec("security", "security", "escalate", 0.9), {"findings": [unclassified]})

security_abstains_unclassified := object.union(
	{"kind": "abstain", "event_id": "evt-1", "agent": "appsec", "domain": "security", "action": null,
	 "confidence": 0.9, "evidence_refs": [], "scope": null},
	{"findings": [unclassified]},
)

# A hostile or wrong reasoner proposes a confident allow of a drift the security specialist could not classify.
input_unclassified_refuses_an_autonomous_allow := with_input({"specialists": [security_abstains_unclassified]})

test_unclassified_refuses_an_autonomous_allow if {
	v := guardrail.verdict
	v.action == "escalate"
	v.requires_approval == true
	v.scope == null
	has_reason(v, "policy.unclassified")
}

input_unclassified_refuses_an_autonomous_defer := with_input({
	"proposal": proposal("defer", 0.97),
	"specialists": [security_abstains_unclassified],
})

test_unclassified_refuses_an_autonomous_defer if {
	v := guardrail.verdict
	v.action == "escalate"
	v.requires_approval == true
	has_reason(v, "policy.unclassified")
}

input_unclassified_in_the_proposal_refuses_an_allow := with_input({"proposal": object.union(
	proposal("allow", 0.95),
	{"findings": [unclassified]},
)})

test_unclassified_in_the_proposal_refuses_an_allow if {
	v := guardrail.verdict
	v.action == "escalate"
	has_reason(v, "policy.unclassified")
}

input_unclassified_does_not_stop_an_enforce := with_input({
	"proposal": proposal("enforce", 0.9),
	"specialists": [security_enforce, security_unclassified],
})

test_unclassified_does_not_stop_an_enforce if {
	v := guardrail.verdict
	v.action == "enforce"
	not has_reason(v, "policy.unclassified")
}

input_other_findings_change_nothing := with_input({"specialists": [object.union(
	rec("security", "security", "allow", 0.9),
	{"kind": "abstain", "action": null, "findings": [object.union(unclassified, {"kind": "strengthened"})]},
)]})

test_other_findings_change_nothing if {
	v := guardrail.verdict
	v.action == "allow"
	v.requires_approval == false
	not has_reason(v, "policy.unclassified")
}
