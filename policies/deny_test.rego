# Tests of the deny rules: any deny makes the verdict escalate, whatever the agents said.
package driftwise.guardrail_test

import data.driftwise.guardrail
import rego.v1

scoped(paths) := object.union(proposal("allow", 0.95), {"scope": {"resources": [{"ref": {"kind": "Deployment", "name": "api"}, "paths": paths}]}})

input_prune_in_scope_is_denied := with_input({"proposal": scoped(["/spec/syncPolicy/automated/prune"])})

test_prune_in_scope_is_denied if {
	v := guardrail.verdict
	v.action == "escalate"
	v.requires_approval == true
	has_reason(v, "policy.deny.prune_or_delete")
}

input_delete_in_scope_is_denied_whatever_the_case := with_input({"proposal": scoped(["/metadata/annotations/DeleteMe"])})

test_delete_in_scope_is_denied_whatever_the_case if {
	v := guardrail.verdict
	v.action == "escalate"
}

input_deletion_timestamp_is_not_a_delete := with_input({"proposal": scoped(["/metadata/deletionTimestamp"])})

test_deletion_timestamp_is_not_a_delete if {
	v := guardrail.verdict
	v.action == "allow"
}

input_delete_action_is_denied := with_input({"proposal": proposal("delete", 0.99)})

test_delete_action_is_denied if {
	v := guardrail.verdict
	v.action == "escalate"
	has_reason(v, "policy.deny.forbidden_action")
	not "delete" in v.allowed_actions
}

input_prune_from_a_specialist_is_denied := x if {
	p := rec("security", "operational", "prune", 0.99)
	x := with_input({"specialists": [p]})
}

test_prune_from_a_specialist_is_denied if {
	v := guardrail.verdict
	v.action == "escalate"
}

input_deny_beats_security_enforce := with_input({"proposal": scoped(["/x/prune"]), "specialists": [security_enforce]})

test_deny_beats_security_enforce if {
	v := guardrail.verdict
	v.action == "escalate"
	v.allowed_actions == ["enforce", "escalate"]
}

input_event_mismatch_is_denied := x if {
	other := object.union(proposal("allow", 0.95), {"event_id": "evt-2"})
	x := with_input({"proposal": other})
}

test_event_mismatch_is_denied if {
	v := guardrail.verdict
	v.action == "escalate"
	has_reason(v, "policy.deny.event_mismatch")
}

input_unreadable_windows_are_denied := x if {
	bad := object.union(facts, {"windows_error": "bad cron"})
	x := with_input({"facts": bad})
}

test_unreadable_windows_are_denied if {
	v := guardrail.verdict
	v.action == "escalate"
	has_reason(v, "policy.deny.windows_unreadable")
}

input_missing_facts_are_denied := with_input({"facts": null})

test_missing_facts_are_denied if {
	v := guardrail.verdict
	v.action == "escalate"
}

# The edges where OPA and regopy once answered differently (docs/rego-engines.md): a missing field is
# refused the same way by both.
input_no_facts_at_all_is_denied := object.remove(base_input, ["facts"])

test_no_facts_at_all_is_denied if {
	v := guardrail.verdict
	v.action == "escalate"
	has_reason(v, "policy.deny.facts_missing")
}

input_proposal_without_an_action_is_denied := with_input({"proposal": object.remove(proposal("allow", 0.95), ["action"])})

test_proposal_without_an_action_is_denied if {
	v := guardrail.verdict
	v.action == "escalate"
	has_reason(v, "policy.deny.forbidden_action")
}
