"""Who may answer a project's decisions (`console.approvers`): the one rule the console and the API share.

A project listed (or `*`, for every project not listed) names users and groups; an identity matches by its
user or e-mail (case-insensitively) or by one of its groups (exactly, as the proxy sends them). A project
with no rule may be answered by anyone who may answer at all. The runner applies the rule to every answer
(DecisionRunner.resume), so no path around it exists; the console also asks it to show the answer form only
to those it would accept. Only a proxy's identity carries groups: a name given with the approvals token can
match `users` only, and the audit records how each identity was established.
"""

from __future__ import annotations

from agents.drift.config import ApproverRule
from protocol.models import Identity

ANY_PROJECT = "*"


class Approvers:
    def __init__(self, rules: dict[str, ApproverRule]) -> None:
        self._rules = rules

    def _rule(self, project: str) -> tuple[str, ApproverRule] | None:
        for key in (project, ANY_PROJECT):
            if key in self._rules:
                return key, self._rules[key]
        return None

    def refusal(self, identity: Identity, project: str) -> str | None:
        """Why `identity` may not answer `project`'s decisions; None when it may."""
        found = self._rule(project)
        if found is None:
            return None
        key, rule = found
        names = {identity.user.casefold(), *([identity.email.casefold()] if identity.email else [])}
        if names & {u.casefold() for u in rule.users} or set(identity.groups) & set(rule.groups):
            return None
        allowed = " and ".join(part for part in (
            f"users {', '.join(rule.users)}" if rule.users else "", f"groups {', '.join(rule.groups)}"
            if rule.groups else "") if part)
        return (f"{identity.user} may not answer decisions of project {project}: console.approvers.{key} allows only "
                f"{allowed}. Ask one of them to answer.")
