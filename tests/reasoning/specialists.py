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


def _runtime(agent: str, http: httpx.AsyncClient) -> Runtime:
    key = generate_key(agent)
    config = KitConfig(agent=agent, port=1, token="unused", keys_dir=_NOWHERE, trust_store=_NOWHERE / "trust.json")
    return Runtime(config=config, key=key, trust=TrustStore(), http=http, signer=Signer(agent=agent, key=key),
                   verifier=Verifier(trust=TrustStore(), audience=agent), peers=PeerClient(http))


async def answers(report: DriftReport, evidence: list[Evidence]) -> list[Recommendation]:
    """The security and the compliance specialist's recommendations for `report`, from their own code."""
    request = AnalysisRequest(event_id=report.event_id, requester="drift", report=report, evidence=evidence)
    out: list[Recommendation] = []
    async with httpx.AsyncClient() as http:
        for cls, agent in ((SecuritySpecialist, "security"), (ComplianceSpecialist, "compliance")):
            specialist: Specialist = cls(_runtime(agent, http))
            await specialist.start()
            try:
                out.append(await specialist.analyze(request))
            finally:
                await specialist.close()
    return out
