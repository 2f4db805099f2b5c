"""Generated guardrail cases, shared by the property tests and the engines' differential test.

`guardrail_case` drives the whole Guardrail (signed recommendations, some corrupted); `policy_input`
is a raw policy input no pydantic model would let through.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import strategies as st

from agents.drift.guardrail import Guardrail
from protocol.models import Action, Domain, SignedRecommendation
from protocol.signing import Signer, generate_key
from tests.guardrail.support import DENY_ALL_DAY, NOW, Keys, rec, report

ACTIONS = [None, *Action]
_STRANGER = generate_key("security")

spec = st.fixed_dictionaries({
    "agent": st.sampled_from(["security", "compliance"]),
    "action": st.sampled_from(ACTIONS),
    "confidence": st.floats(0, 1),
    "domain": st.sampled_from(list(Domain)),
    "corrupt": st.sampled_from([None, None, None, "tamper", "stranger", "expired", "audience"]),
})
guardrail_case = st.fixed_dictionaries({
    "proposal_action": st.sampled_from(list(Action)),
    "proposal_confidence": st.floats(0, 1),
    "proposal_corrupt": st.sampled_from([None, None, None, "tamper"]),
    "specialists": st.lists(spec, max_size=3),
    "threshold": st.floats(0.5, 0.95),
    "freeze": st.booleans(),
    "second": st.sampled_from(ACTIONS),
})


def sign_case(keys: Keys, r: Any, corrupt: str | None) -> SignedRecommendation:
    if corrupt == "stranger":
        return Signer(r.agent, _STRANGER).sign_recommendation(r, ["drift"])
    if corrupt == "expired":
        return keys.signer(r.agent, ttl_s=-60).sign_recommendation(r, ["drift"])
    if corrupt == "audience":
        return keys.sign(r, audience=["elsewhere"])
    signed = keys.sign(r)
    if corrupt == "tamper":
        head, body, sig = signed.jws.split(".")
        return SignedRecommendation(jws=f"{head}.{body}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}", recommendation=r)
    return signed


def run_case(keys: Keys, engine: Any, c: dict[str, Any]):
    proposal = rec("drift", c["proposal_action"], c["proposal_confidence"], with_scope=True)
    specs = [rec(s["agent"], s["action"], s["confidence"], domain=s["domain"]) for s in c["specialists"]]
    second = rec("drift", c["second"], 0.85) if c["second"] else None
    g = Guardrail(keys.verifier(), engine, c["threshold"])
    out = asyncio.run(g.evaluate(
        report=report(windows=[DENY_ALL_DAY] if c["freeze"] else None),
        proposal=sign_case(keys, proposal, c["proposal_corrupt"]),
        specialists=[sign_case(keys, r, s["corrupt"]) for r, s in zip(specs, c["specialists"], strict=True)],
        expected_specialists=["security"], now=NOW, second_opinion=second,
    ))
    return out, proposal, specs


junk = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=8) | st.sampled_from(
        ["allow", "defer", "enforce", "escalate", "delete", "prune", "recommendation", "security"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["kind", "action", "agent", "domain", "confidence", "scope", "event_id", "sync_allowed_now"]), inner,
        max_size=4),
    max_leaves=12,
)
raw_rec = st.fixed_dictionaries({
    "kind": st.sampled_from(["recommendation", "abstain", "x"]),
    "agent": st.sampled_from(["drift", "security", "compliance", 'q"uote']),
    "domain": st.sampled_from(["security", "compliance", "operational"]),
    "action": st.sampled_from(["allow", "defer", "enforce", "escalate", "delete", "prune", None]),
    "confidence": st.floats(0, 1),
    "event_id": st.sampled_from(["evt-1", "evt-2"]),
    "scope": st.none() | junk,
})


policy_input = st.fixed_dictionaries({
    "event_id": st.just("evt-1"),
    "threshold": st.floats(0, 1),
    "proposal": st.none() | raw_rec,
    "specialists": st.lists(raw_rec, max_size=3),
    "discarded": st.just([]),
    "missing_specialists": st.lists(st.sampled_from(["security", "compliance"]), max_size=2),
    "second_opinion": st.none() | raw_rec,
    "facts": st.none() | st.fixed_dictionaries({"application": st.text(max_size=10), "sync_allowed_now": junk,
                                                "freeze_active": st.booleans()}),
})
