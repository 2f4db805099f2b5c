# Deny rules: any of them makes the final action `escalate`, whatever any agent said.
# Each is {"id", "message"}; the id becomes the reason code `policy.deny.<id>`.
package driftwise.guardrail

import rego.v1

# A word starting with prune or delete (deletionTimestamp is not one): Driftwise never prunes or deletes.
# Matched against lower(s): regopy's regex.match silently fails on the (?i) flag.
prune_or_delete := `(^|[^a-z])(prune|delete)`

# A missing field is read as null: OPA finds `not x.action in actions` (and `not is_object(input.facts)`)
# undefined when the field is missing, where regopy finds it true (docs/rego-engines.md).
deny contains {"id": "forbidden_action", "message": msg} if {
	has_proposal
	not object.get(proposal, "action", null) in actions
	msg := sprintf("the proposal's action %v is not one of %v", [object.get(proposal, "action", null), actions])
}

deny contains {"id": "forbidden_action", "message": msg} if {
	some r in input.specialists
	r.kind == "recommendation"
	not object.get(r, "action", null) in actions
	msg := sprintf("specialist %v proposes %v, which is not one of %v", [r.agent, object.get(r, "action", null),
		actions])
}

deny contains {"id": "prune_or_delete", "message": msg} if {
	has_proposal
	some s in scope_words
	regex.match(prune_or_delete, lower(s))
	msg := sprintf("the proposal's scope mentions %v: nothing Driftwise does prunes or deletes", [s])
}

scope_words contains s if {
	walk(proposal.scope, [path, value])
	is_string(value)
	s := value
}

scope_words contains s if {
	walk(proposal.scope, [path, _])
	some s in path
	is_string(s)
}

deny contains {"id": "event_mismatch", "message": msg} if {
	has_proposal
	proposal.event_id != input.event_id
	msg := sprintf("the proposal is about event %v, not %v", [proposal.event_id, input.event_id])
}

deny contains {"id": "facts_missing", "message": "the input carries no facts about the drift"} if {
	not is_object(object.get(input, "facts", null))
}

deny contains {"id": "windows_unreadable", "message": msg} if {
	is_string(input.facts.windows_error)
	msg := sprintf("the project's sync windows cannot be evaluated: %v", [input.facts.windows_error])
}
