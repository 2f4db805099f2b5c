# The guardrail's decision: clamp the drift agent's signed proposal against the invariants.
#
# Input (built by agents/drift/guardrail/opa_input.py; every recommendation here already passed
# signature verification — the discarded ones are listed, never used):
#   event_id, now, threshold, proposal (Recommendation JSON or null), specialists (accepted),
#   discarded [{agent, reason, detail, role}], expected_specialists, missing_specialists,
#   second_opinion (Recommendation JSON or null),
#   facts {application, project, destination_namespace, namespaces, namespace_labels, kinds,
#          changed_paths, resources, sync_allowed_now, freeze_active, next_allow_window, windows_error}
# Output: `verdict` {action, requires_approval, allowed_actions, confidence, threshold, reasons, deny, scope}.
# The rules, in order: an OPA deny always wins (escalate); a security specialist's enforce is
# binding; any accepted specialist's escalate escalates; otherwise the proposal; an enforce the
# sync windows refuse now escalates; an allow or defer of a drift that a specialist (or the proposal)
# marked `unclassified` — a change whose meaning no knowledge pack establishes — escalates. A human approves an escalation, a confidence below the
# threshold, a second opinion that disagrees, or a missing specialist.
package driftwise.guardrail

import rego.v1

actions := ["allow", "defer", "enforce", "escalate"]

default threshold := 0.8

threshold := input.threshold if is_number(input.threshold)

# --- the proposal and the specialists ---------------------------------------------------------

proposal := input.proposal if {
	is_object(input.proposal)
	input.proposal.kind == "recommendation"
}

has_proposal if is_object(proposal)

security_enforcers contains r.agent if {
	some r in input.specialists
	r.kind == "recommendation"
	r.domain == "security"
	r.action == "enforce"
}

security_binding if count(security_enforcers) > 0

specialist_escalations contains r.agent if {
	some r in input.specialists
	r.kind == "recommendation"
	r.action == "escalate"
}

default missing_specialists := []

missing_specialists := input.missing_specialists if is_array(input.missing_specialists)

# Findings are typed (protocol Finding.kind): the policy reads their kind, never their message.
unclassified_marked if {
	some r in input.specialists
	some f in r.findings
	f.kind == "unclassified"
}

unclassified_marked if {
	some f in input.proposal.findings
	f.kind == "unclassified"
}

# --- the action ---------------------------------------------------------------------------------

base_action := "enforce" if {
	security_binding
} else := "escalate" if {
	count(specialist_escalations) > 0
} else := "escalate" if {
	not has_proposal
} else := proposal.action

# Driftwise's syncs are manual syncs; a missing or non-boolean fact counts as "refused" (fail closed).
# Negated through a rule: OPA finds `not is_boolean(input.facts.sync_allowed_now)` undefined when the
# fact is missing (regopy: true), which let an enforce through there (docs/rego-engines.md).
window_refuses if {
	base_action == "enforce"
	not sync_allowed_now
}

sync_allowed_now if input.facts.sync_allowed_now == true

# Unknown is never benign: nothing accepts or leaves waiting what nobody can say the meaning of.
unclassified_refuses if {
	unclassified_marked
	base_action in {"allow", "defer"}
}

action := "escalate" if {
	count(deny) > 0
} else := "escalate" if {
	window_refuses
} else := "escalate" if {
	unclassified_refuses
} else := "escalate" if {
	not base_action_known
} else := base_action

# A rule, negated: `not base_action in actions` is undefined in OPA when base_action is (a proposal
# without an action), true in regopy.
base_action_known if base_action in actions

# --- confidence and approval --------------------------------------------------------------------

security_confidences := [c | some r in input.specialists; r.agent in security_enforcers; c := r.confidence]

# The largest by `<=`, not max(): regopy's max() and sort() order numbers as their text (max([10, 9]) is 9,
# max([1e-05, 0.5]) is 1e-05), OPA's by value (docs/rego-engines.md).
security_confidence := c if {
	some c in security_confidences
	every d in security_confidences {
		d <= c
	}
}

confidence := security_confidence if {
	security_binding
} else := proposal.confidence if {
	has_proposal
	is_number(proposal.confidence)
} else := 0

low_confidence if confidence < threshold

second_opinion_disagrees if {
	has_proposal
	is_object(input.second_opinion)
	input.second_opinion.kind == "recommendation"
	input.second_opinion.action != proposal.action
}

default requires_approval := false

requires_approval if action == "escalate"

requires_approval if low_confidence

requires_approval if second_opinion_disagrees

requires_approval if count(missing_specialists) > 0

# What an approver may choose: never an action the policy rules out.
approver_excluded contains a if {
	security_binding
	some a in ["allow", "defer"]
}

allowed_actions := [a | some a in actions; not approver_excluded[a]]

default verdict_scope := null

verdict_scope := proposal.scope if {
	has_proposal
	action == proposal.action
	action in {"allow", "defer"}
}

# --- reasons (ordered: what decided first) ------------------------------------------------------
# The order key is a zero-padded string: regopy sorts numbers as their text ([100, ...] before [30, ...]),
# OPA by value; both sort strings by their bytes (docs/rego-engines.md).
# regopy quirk: sprintf("%s") of a string computed in the policy (concat, sort) keeps its quotes in
# the compiled bundle; such messages are built with concat, sprintf only formats input values.

reason contains ["010", concat("", ["policy.deny.", d.id]), d.message] if some d in deny

reason contains ["020", "policy.proposal_missing", "no verified proposal from the drift agent: a human decides"] if {
	not has_proposal
}

reason contains ["030", "policy.security_enforce_binding", msg] if {
	security_binding
	msg := concat("", [
		"security enforce by ", concat(", ", sort(security_enforcers)),
		" is binding: the drift is reverted, never allowed or deferred",
	])
}

reason contains ["040", "policy.specialist_escalate", msg] if {
	count(specialist_escalations) > 0
	not security_binding
	msg := concat("", ["specialist ", concat(", ", sort(specialist_escalations)), " escalated: a human decides"])
}

reason contains ["040", "policy.specialist_escalate", msg] if {
	count(specialist_escalations) > 0
	security_binding
	msg := concat("", [
		"specialist ", concat(", ", sort(specialist_escalations)),
		" escalated, overridden by the binding security enforce",
	])
}

reason contains ["050", "policy.sync_window_refuses", msg] if {
	window_refuses
	msg := sprintf("the project's sync windows refuse a sync of %v now: escalated instead of enforce", [
		input.facts.application,
	])
}

reason contains ["052", "policy.unclassified", msg] if {
	unclassified_refuses
	by := {a |
		some r in array.concat(input.specialists, [object.get(input, "proposal", {})])
		some f in object.get(r, "findings", [])
		f.kind == "unclassified"
		a := r.agent
	}
	msg := concat("", [
		"a change marked unclassified by ", concat(", ", sort(by)),
		" has no established meaning: it is never allowed or deferred without a human",
	])
}

reason contains ["055", "policy.freeze_active", "a deny sync window (change freeze) is active now"] if {
	input.facts.freeze_active == true
}

reason contains ["060", "policy.threshold", msg] if {
	low_confidence
	msg := sprintf("confidence %v is below the threshold %v: a human must approve", [confidence, threshold])
}

reason contains ["070", "policy.second_opinion_disagrees", msg] if {
	second_opinion_disagrees
	so := input.second_opinion
	msg := sprintf("proposal by %v says %v (confidence %v); the deterministic second opinion says %v (confidence %v)", [
		proposal.agent, proposal.action, proposal.confidence, so.action, so.confidence,
	])
}

reason contains ["080", "policy.specialist_missing", msg] if {
	count(missing_specialists) > 0
	msg := concat("", [
		"expected specialist(s) ", concat(", ", [m | some m in missing_specialists; is_string(m)]),
		" gave no verified answer: a human must approve",
	])
}

reason contains ["090", "policy.recommendation_discarded", msg] if {
	some d in input.discarded
	msg := sprintf("recommendation from %v discarded: %v", [d.agent, d.reason])
}

reason contains ["100", "policy.proposal", msg] if {
	has_proposal
	action == proposal.action
	msg := sprintf("final action follows the proposal of %v: %v", [proposal.agent, proposal.action])
}

reasons := [{"code": r[1], "message": r[2]} | some r in sort(reason)]

deny_list := [d | some d in sort(deny)]

verdict := {
	"action": action,
	"requires_approval": requires_approval,
	"allowed_actions": allowed_actions,
	"confidence": confidence,
	"threshold": threshold,
	"reasons": reasons,
	"deny": deny_list,
	"scope": verdict_scope,
}
