"""The real security and compliance specialists' code, in process: what they answer a report (no A2A, no MCP).

Their `analyze()` runs as in their processes; what cannot be had in process (the RBAC context over
MCP, the security agent's consult of the compliance agent over A2A) degrades exactly as a failed
dependency would there. The compliance agent answers on its own, as the drift agent asks both.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from agents.compliance.agent import ComplianceSpecialist
from agents.kit.client import PeerClient
from agents.kit.config import KitConfig
from agents.kit.runtime import Runtime
from agents.kit.specialist import Specialist
from agents.security.agent import SecuritySpecialist
from protocol.models import AnalysisRequest, DriftReport, Evidence, Recommendation
from protocol.signing import Signer, TrustStore, Verifier, generate_key

_NOWHERE = Path("/nonexistent/driftwise-test-keys")


def _no_network(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"in-process specialists reach nothing: {request.url}", request=request)


_HTTP = httpx.AsyncClient(transport=httpx.MockTransport(_no_network))
"""Never opens a socket: a consult or context call fails as a failed dependency would."""


def _runtime(agent: str) -> Runtime:
    key = generate_key(agent)
    config = KitConfig(agent=agent, port=1, token="unused", keys_dir=_NOWHERE, trust_store=_NOWHERE / "trust.json")
    return Runtime(config=config, key=key, trust=TrustStore(), http=_HTTP, signer=Signer(agent=agent, key=key),
                   verifier=Verifier(trust=TrustStore(), audience=agent), peers=PeerClient(_HTTP))


_STARTED: dict[str, Specialist] = {}


async def _specialist(cls: type[Specialist], agent: str) -> Specialist:
    """Each specialist built and started once per test process (start() reads its rules and the packs)."""
    if agent not in _STARTED:
        specialist = cls(_runtime(agent))
        await specialist.start()
        _STARTED[agent] = specialist
    return _STARTED[agent]


async def answers(report: DriftReport, evidence: list[Evidence]) -> list[Recommendation]:
    """The security and the compliance specialist's recommendations for `report`, from their own code."""
    request = AnalysisRequest(event_id=report.event_id, requester="drift", report=report, evidence=evidence)
    out: list[Recommendation] = []
    for cls, agent in ((SecuritySpecialist, "security"), (ComplianceSpecialist, "compliance")):
        out.append(await (await _specialist(cls, agent)).analyze(request))
    return out
